import { type Command, InvalidArgumentError } from 'commander';
import { checkOutputFile } from '../io/paths.js';
import { convertCheckpoint } from '../model/convert.js';
import type { DitConfig } from '../model/config.js';
import { intOption } from './generate.js';
import { progress } from './progress.js';

interface ConvertCliOptions {
  key?: string; stripPrefix: string | false; heads?: number; textLen?: number; latentSize?: [number, number];
  framesPerChunk?: number; chunks?: number; name?: string; quiet?: boolean;
}

function latentSize(value: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(value);
  if (!m || Number(m[1]) < 2 || Number(m[2]) < 2) throw new InvalidArgumentError(`--latent-size must be HxW in latent pixels (e.g. 60x104) but received '${value}'`);
  return [Number(m[1]), Number(m[2])];
}

/** `qarvd convert`: a PyTorch .pt or a safetensors checkpoint to a qarvd model file. */
export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('convert a checkpoint (PyTorch .pt such as self_forcing_dmd.pt, or Wan2.1 safetensors) to a model file: its state dict, Wan names, dtypes kept, configuration in the metadata; no code in the .pt runs')
    .argument('<input>', 'a .pt (torch.save zip) or .safetensors checkpoint')
    .argument('<output>', 'the model file to write (safetensors)')
    .option('--key <name>', 'the state dict in a .pt (default: generator_ema, generator, state_dict, model, ... whichever it has)')
    .option('--strip-prefix <prefix>', "prefix to take off every name ('auto': wrapper prefixes such as 'model.')", 'auto')
    .option('--no-strip-prefix', 'keep the names as they are')
    .option('--heads <n>', 'attention heads (known for Wan2.1 1.3B and 14B; needed for other widths)', intOption('--heads', 1))
    .option('--text-len <n>', 'context length (default 512, as Wan)', intOption('--text-len', 1))
    .option('--latent-size <HxW>', 'latent frame size (default 60x104: 480x832 video)', latentSize)
    .option('--frames-per-chunk <n>', 'latent frames per chunk (default 3, as Self-Forcing)', intOption('--frames-per-chunk', 1))
    .option('--chunks <n>', 'chunks per video (default 7)', intOption('--chunks', 1))
    .option('--name <name>', 'the model\'s name in reports (default from its size, e.g. wan2.1-t2v-1.3b)')
    .option('--quiet', 'no progress output')
    .action(async (input: string, output: string, o: ConvertCliOptions) => {
      await checkOutputFile(output, '<output>');
      const config: Partial<DitConfig> = {};
      if (o.heads !== undefined) config.heads = o.heads;
      if (o.textLen !== undefined) config.textLen = o.textLen;
      if (o.latentSize) [config.latentHeight, config.latentWidth] = o.latentSize;
      if (o.framesPerChunk !== undefined) config.framesPerChunk = o.framesPerChunk;
      if (o.chunks !== undefined) config.chunks = o.chunks;
      if (o.name !== undefined) config.name = o.name;
      const bar = progress('convert', { quiet: o.quiet });
      const r = await convertCheckpoint(input, output, {
        key: o.key, stripPrefix: o.stripPrefix === 'auto' ? undefined : o.stripPrefix, config,
        onProgress: (d, t) => bar.update(d, t, 'tensors'),
      });
      bar.stop();
      console.log(JSON.stringify(r, null, 2));
    });
}
