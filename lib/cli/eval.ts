import type { Command } from 'commander';
import { checkOutputFile } from '../io/paths.js';
import { readVideos, type VideoSet } from '../io/videos.js';
import { readTextFeatures } from '../io/text_features.js';
import { writeFileAtomic } from '../io/safetensors.js';
import { videoMetrics } from '../metrics/video.js';
import { intOption } from './generate.js';

/** `qarvd eval`: metrics of one video set against a reference set (for example the FP model's). */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('compare generated videos with reference videos: MSE, PSNR, SSIM, temporal error per frame and chunk')
    .argument('<videos>', 'videos to judge (from qarvd generate)')
    .argument('<reference>', 'reference videos of the same prompts and seeds (for example the FP model\'s)')
    .option('--chunk-size <n>', 'frames per chunk', intOption('--chunk-size', 1), 3)
    .option('--features <file>', 'check that both sets were generated from these text features (generate --features)')
    .option('--out <file>', 'also write the metrics JSON here')
    .action(async (videosFile: string, referenceFile: string, o: { chunkSize: number; features?: string; out?: string }) => {
      if (o.out) await checkOutputFile(o.out, '--out');
      const [set, ref] = await Promise.all([readVideos(videosFile), readVideos(referenceFile)]);
      // Prompts are paired by name; features make the name a label, so the contexts must be the same too.
      const source = (s: VideoSet) => (s.info.features as { digest?: string } | null | undefined)?.digest ?? null;
      const says = (d: string | null) => (d ? `text features ${d.slice(0, 12)}` : 'text prompts');
      if (source(set) !== source(ref)) throw new RangeError(`${videosFile} was generated from ${says(source(set))} but ${referenceFile} from ${says(source(ref))}`);
      if (o.features) {
        const { digest } = await readTextFeatures(o.features);
        if (source(set) !== digest) throw new RangeError(`${videosFile} was generated from ${says(source(set))}, not from ${o.features} (${says(digest)})`);
      }
      if (set.videos.length !== ref.videos.length) {
        throw new RangeError(`${videosFile} has ${set.videos.length} videos but ${referenceFile} has ${ref.videos.length}`);
      }
      const per = set.videos.map((v, i) => {
        const r = ref.videos[i];
        if (v.prompt !== r.prompt || v.seed !== r.seed) {
          throw new RangeError(`video ${i} was made from '${v.prompt}' (seed ${v.seed}) but its reference from '${r.prompt}' (seed ${r.seed})`);
        }
        const m = videoMetrics(v.latents, r.latents, { chunkSize: o.chunkSize });
        return { prompt: v.prompt, seed: v.seed, mse: m.mse, psnr: m.psnr, ssim: m.ssim, temporal: m.temporal, perChunk: m.perChunk, perFrame: m.perFrame };
      });
      const mean = (k: 'mse' | 'psnr' | 'ssim' | 'temporal') => per.reduce((s, v) => s + v[k], 0) / per.length;
      const result = { videos: videosFile, reference: referenceFile, mean: { mse: mean('mse'), psnr: mean('psnr'), ssim: mean('ssim'), temporal: mean('temporal') }, perVideo: per };
      const text = JSON.stringify(result, (_k, v) => (v === Infinity ? 'Infinity' : Number.isNaN(v) ? null : v), 2);
      if (o.out) await writeFileAtomic(o.out, text + '\n');
      console.log(text);
    });
}
