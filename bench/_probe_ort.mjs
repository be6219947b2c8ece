import { oneNodeModel, session, timeit, ort } from './lib/ort.mjs';
const M = +(process.argv[2] ?? 768);
const shapes = [[1536,1536],[1536,8960],[8960,1536]];
function rnd(n){ const a=new Float32Array(n); for(let i=0;i<n;i++) a[i]=Math.random()*2-1; return a; }
for (const [K,N] of shapes) {
  const x = new ort.Tensor('float32', rnd(M*K), [M,K]);
  const ops = 2*M*K*N;
  // MatMul, constant weight [K,N]
  let s = await session(oneNodeModel({op:'MatMul', inputs:[{name:'x',dtype:'float32',shape:['M',K]}], initializers:[{name:'w',dtype:'float32',shape:[K,N],data:rnd(K*N)}], nodeInputs:['x','w'], outputs:[{name:'y',dtype:'float32',shape:['M',N]}]}),2);
  let t = await timeit(()=>s.run({x}), {iterations:5, warmup:1});
  console.log(`M=${M} K=${K} N=${N} MatMul ${(t*1e3).toFixed(1)}ms ${(ops/t/1e9).toFixed(1)} GFLOP/s`);
  const wq = new Int8Array(K*N); for(let i=0;i<wq.length;i++) wq[i]=(Math.random()*255-128)|0;
  const sc = new Float32Array(N).fill(0.01);
  s = await session(oneNodeModel({op:'DynamicQuantizeMatMul', domain:'com.microsoft', inputs:[{name:'x',dtype:'float32',shape:['M',K]}], initializers:[{name:'w',dtype:'int8',shape:[K,N],data:wq},{name:'s',dtype:'float32',shape:[N],data:sc}], nodeInputs:['x','w','s'], outputs:[{name:'y',dtype:'float32',shape:['M',N]}]}),2);
  t = await timeit(()=>s.run({x}), {iterations:5, warmup:1});
  console.log(`   DQMatMul ${(t*1e3).toFixed(1)}ms ${(ops/t/1e9).toFixed(1)} GOP/s`);
  const bs=128, kb=Math.ceil(K/bs);
  const b4 = new Uint8Array(N*kb*bs/2); for(let i=0;i<b4.length;i++) b4[i]=(Math.random()*256)|0;
  const s4 = new Float32Array(N*kb).fill(0.01);
  s = await session(oneNodeModel({op:'MatMulNBits', domain:'com.microsoft', inputs:[{name:'x',dtype:'float32',shape:['M',K]}], initializers:[{name:'w',dtype:'uint8',shape:[N,kb,bs/2],data:b4},{name:'s',dtype:'float32',shape:[N*kb],data:s4}], nodeInputs:['x','w','s'], attributes:{K,N,bits:4,block_size:bs,accuracy_level:4}, outputs:[{name:'y',dtype:'float32',shape:['M',N]}]}),2);
  t = await timeit(()=>s.run({x}), {iterations:3, warmup:1});
  console.log(`   MatMulNBits ${(t*1e3).toFixed(1)}ms ${(ops/t/1e9).toFixed(1)} GOP/s`);
}
