"""Writes a torch model as a qarvd model file: safetensors under Wan's names with the
configuration in the metadata (key "qarvd.config"), written atomically."""
import json
import os
import struct

import torch

DTYPES = {torch.float32: 'F32', torch.float16: 'F16'}


def save_model(path, model, config, dtype=torch.float32):
    tensors = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_safetensors(path, tensors, {'qarvd.config': json.dumps(config), 'format': 'pt'})


def save_safetensors(path, tensors, metadata):
    header = {'__metadata__': metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        b = t.numpy().tobytes()
        header[name] = {'dtype': DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
