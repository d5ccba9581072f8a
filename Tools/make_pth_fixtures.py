#!/usr/bin/env python3
"""Small `.pth` fixtures for Tests/GenNNTests/TorchCheckpointTests.swift.

Writes, into Tests/GenNNTests/Fixtures/pth/ (each file well under 50 KB):

  layouts.pth        torch.save zip archive (the format torchvision publishes) of a state_dict
                     exercising what the Swift reader must handle: a transposed (non-contiguous)
                     tensor, a view with a storage offset, two tensors sharing one storage, a 0-d
                     tensor, an empty tensor, float64 / float16 / bfloat16 / int64 / int32 /
                     uint8 / bool tensors, an nn.Parameter (_rebuild_parameter), and an
                     OrderedDict with `_metadata` (as Module.state_dict() returns)
  layouts_legacy.pth the same state_dict written with _use_new_zipfile_serialization=False
                     (the pre-1.6 format of the older torchvision files such as vgg16-397923af.pth)
  expected.json      for every key of layouts.pth: {"shape": [...], "data": [flat row-major floats]}
  evil_os_system.pth a valid torch zip archive whose data.pkl calls os.system via __reduce__
                     (protocol 2, GLOBAL 'posix system' or 'nt system')
  evil_eval.pth      data.pkl calling builtins.eval via STACK_GLOBAL (protocol 4)
  evil_nested.pth    a genuine state_dict with one value replaced by an os.system call
  evil_legacy.pth    legacy (non-zip) format whose main pickle calls os.system
  broken_*.pth       layouts.pth with one defect each: no data.pkl (no_pickle), a storage entry
                     removed (missing_storage), a storage entry cut short (short_storage),
                     data.pkl cut in half (truncated_pickle), an undefined opcode 0xff
                     (unknown_opcode), a checkpoint dict holding an int (not_state_dict)

Every malicious payload would create the marker file /tmp/gen_pth_fixture_pwned (the test
deletes it, loads the fixture, and asserts the file was not created). The payloads are only
ever written here, never unpickled.

Run with a Python that has torch (CPU is enough):

    /tmp/gen-anchors/bin/python Tools/make_pth_fixtures.py

Zip entries are written by torch itself (stored, uncompressed, 64-byte aligned), so the output
depends on the torch version only in the archive's small version files.
"""
import collections
import io
import json
import os
import pickle
import sys
import zipfile

import torch

MARKER = "/tmp/gen_pth_fixture_pwned"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "GenNNTests", "Fixtures", "pth")


def layouts_state_dict():
    sd = collections.OrderedDict()
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.5 - 1.0
    sd["transposed"] = base.t()  # shape [4, 3], stride (1, 4)
    assert not sd["transposed"].is_contiguous()
    long_vec = torch.arange(20, dtype=torch.float32) * 0.25
    sd["offset_view"] = long_vec[5:11].view(2, 3)  # storage offset 5
    shared = torch.linspace(-1, 1, 10, dtype=torch.float32)
    sd["shared_a"] = shared
    sd["shared_b"] = shared[2:8].view(3, 2)  # same storage as shared_a
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 3)
    sd["conv.weight"] = (torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2) - 7) / 8
    sd["double"] = torch.tensor([[1.5, -2.25], [1e-3, 4.0]], dtype=torch.float64)
    sd["half"] = torch.tensor([0.5, -1.0, 65504.0, 6e-8], dtype=torch.float16)
    sd["bfloat16"] = torch.tensor([1.0, -3.5, 0.15625], dtype=torch.bfloat16)
    sd["bn.num_batches_tracked"] = torch.tensor(42, dtype=torch.int64)
    sd["int32"] = torch.tensor([-7, 0, 123456], dtype=torch.int32)
    sd["uint8"] = torch.tensor([0, 7, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["param"] = torch.nn.Parameter(torch.tensor([[0.125, -0.5, 2.0]]))
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
    return sd


def expected(sd):
    out = {}
    for k, v in sd.items():
        t = v.detach().to(torch.float64)
        out[k] = {"shape": list(t.shape), "data": [float(x) for x in t.reshape(-1).tolist()]}
    return out


class _OsSystem:
    def __reduce__(self):
        return (os.system, ("touch " + MARKER,))


class _Eval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch %s')" % MARKER,))


def torch_zip(path, prefix, pickle_bytes):
    """A zip laid out exactly like torch.save's: PREFIX/data.pkl, PREFIX/version, PREFIX/byteorder."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(prefix + "/data.pkl", pickle_bytes)
        z.writestr(prefix + "/byteorder", "little")
        z.writestr(prefix + "/data/0", b"\0" * 16)
        z.writestr(prefix + "/version", "3\n")


def rewrite_zip(src, dst, edit):
    """Copies the torch zip `src` to `dst`, passing each (name, bytes) through `edit` (None drops it)."""
    prefix = os.path.splitext(os.path.basename(dst))[0]
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            name = info.filename.split("/", 1)[1]
            data = edit(name, zin.read(info.filename))
            if data is not None:
                zout.writestr(prefix + "/" + name, data)


def broken_fixtures():
    src = os.path.join(OUT, "layouts.pth")
    cases = {
        "broken_no_pickle": lambda n, d: None if n == "data.pkl" else d,
        "broken_missing_storage": lambda n, d: None if n == "data/2" else d,
        "broken_short_storage": lambda n, d: d[:4] if n == "data/2" else d,
        "broken_truncated_pickle": lambda n, d: d[: len(d) // 2] if n == "data.pkl" else d,
        "broken_unknown_opcode": lambda n, d: b"\x80\x02\xff." if n == "data.pkl" else d,
    }
    for name, edit in cases.items():
        rewrite_zip(src, os.path.join(OUT, name + ".pth"), edit)
    torch.save({"epoch": 3, "w": torch.ones(2)}, os.path.join(OUT, "broken_not_state_dict.pth"))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    sd = layouts_state_dict()
    torch.save(sd, os.path.join(OUT, "layouts.pth"))
    torch.save(sd, os.path.join(OUT, "layouts_legacy.pth"), _use_new_zipfile_serialization=False)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected(sd), f, indent=1, sort_keys=True)
        f.write("\n")

    # Round-trip check: torch itself reads both files back identically.
    for name in ("layouts.pth", "layouts_legacy.pth"):
        back = torch.load(os.path.join(OUT, name), weights_only=True)
        assert list(back.keys()) == list(sd.keys()), name
        for k in sd:
            assert torch.equal(back[k], sd[k].detach()), (name, k)
        assert back["shared_b"].untyped_storage().data_ptr() == back["shared_a"].untyped_storage().data_ptr()

    torch_zip(os.path.join(OUT, "evil_os_system.pth"), "evil_os_system", pickle.dumps(_OsSystem(), protocol=2))
    torch_zip(os.path.join(OUT, "evil_eval.pth"), "evil_eval", pickle.dumps(_Eval(), protocol=4))

    # A real state_dict pickle with one entry replaced by an os.system call.
    buf = io.BytesIO()
    nested = collections.OrderedDict([("a", torch.ones(2)), ("b", _OsSystem())])

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, torch.storage.TypedStorage) or isinstance(obj, torch.UntypedStorage):
                return ("storage", torch.FloatStorage, "0", "cpu", 2)
            return None

    P(buf, protocol=2).dump(nested)
    torch_zip(os.path.join(OUT, "evil_nested.pth"), "evil_nested", buf.getvalue())

    # Legacy format: magic number, protocol version, sys_info, then the payload.
    with open(os.path.join(OUT, "evil_legacy.pth"), "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
        pickle.dump(_OsSystem(), f, protocol=2)

    broken_fixtures()

    for name in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, name))
        assert size < 50_000, (name, size)
        print("%-22s %6d bytes" % (name, size))
    if os.path.exists(MARKER):
        sys.exit("marker file exists: something executed a payload")


if __name__ == "__main__":
    main()
