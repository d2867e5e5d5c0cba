"""Reading and writing gdnv dataset files (schema v1, docs/dataset-schema.md) with numpy + h5py.

No torch here, so the file handling can be tested on a machine without it
(test_gdnv_h5.py). The capture scripts use:

  open_dataset / case_names / read_case   validated reading of a case's inputs
  f32_to_bf16_bits / bf16_bits_to_f32      exact bf16 conversions on the bit patterns
  write_array / create_group               datasets in the schema's float types, no time stamps
  CapturedWriter                           copy input -> temp file, add captured groups, rename
"""

import os
import shutil
import tempfile

import h5py
import numpy as np

FORMAT = "gdnv-dataset"
VERSION = 1


class DatasetError(Exception):
    """A file the schema rejects. The message is one line naming file, case and field."""


# ---------------------------------------------------------------------------------------------
# Element types. 16-bit floats are recognised by their bit fields, never by a name.

# name -> (size in bytes, (sign pos, exp pos, exp size, mantissa pos, mantissa size), exponent bias)
_FLOAT_LAYOUTS = {
    "float64": (8, (63, 52, 11, 0, 52), 1023),
    "float32": (4, (31, 23, 8, 0, 23), 127),
    "float16": (2, (15, 10, 5, 0, 10), 15),
    "bfloat16": (2, (15, 7, 8, 0, 7), 127),
}


def _custom_float16_type(fields, ebias):
    # Start from IEEE f32 and shrink it. The fields must be set before the size, because
    # HDF5 refuses a size that the current fields do not fit in.
    tid = h5py.h5t.IEEE_F32LE.copy()
    tid.set_fields(*fields)
    tid.set_precision(16)
    tid.set_size(2)
    tid.set_ebias(ebias)
    return tid


def bf16_type():
    """The schema's bfloat16: size 2, sign bit 15, exponent 7..14, mantissa 0..6, bias 127."""
    return _custom_float16_type(_FLOAT_LAYOUTS["bfloat16"][1], 127)


def fp16_type():
    """IEEE half precision with the same fields as H5T_IEEE_F16LE (older HDF5 lacks that name)."""
    return _custom_float16_type(_FLOAT_LAYOUTS["float16"][1], 15)


def float_type_name(tid):
    """'float64' / 'float32' / 'float16' / 'bfloat16' for a supported HDF5 float type, else None."""
    if tid.get_class() != h5py.h5t.FLOAT or tid.get_order() != h5py.h5t.ORDER_LE:
        return None
    for name, (size, fields, ebias) in _FLOAT_LAYOUTS.items():
        if (tid.get_size() == size and tuple(tid.get_fields()) == fields
                and tid.get_ebias() == ebias and tid.get_precision() == 8 * size
                and tid.get_offset() == 0):
            return name
    return None


def f32_to_bf16_bits(x):
    """float32 array -> uint16 bf16 bit patterns, round to nearest, ties to even.

    Done on the uint32 bits: add 0x7FFF plus the lowest kept bit, then drop 16 bits. That also
    rounds subnormals correctly and overflows the largest finite values to inf, as RNE must.
    NaN is kept NaN (quiet bit set), since the addition could carry a NaN whose payload sits in
    the low 16 bits into inf or across the sign.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)  # uint64: the addition cannot wrap
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan_bits = ((bits >> 16) | 0x0040).astype(np.uint16)
    return np.where(np.isnan(x), nan_bits, rounded)


def bf16_bits_to_f32(bits):
    """uint16 bf16 bit patterns -> float32 (exact: bf16 is the top half of a float32)."""
    bits = np.ascontiguousarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


# ---------------------------------------------------------------------------------------------
# Reading

class CaseInputs:
    """One case's inputs as numpy arrays.

    arrays[name] is float32 for bfloat16/float16/float32 storage (exact) and float64 for float64
    storage (so nothing is rounded); dtypes[name] is the stored type's name. cu_seqlens is an
    int64 array or None. Shapes: B, T, H, HV, K, V, N (number of sequences).
    """

    def __init__(self, name):
        self.name = name
        self.arrays = {}
        self.dtypes = {}
        self.cu_seqlens = None


def open_dataset(path):
    """Opens a gdnv dataset read-only after checking the root attributes. Caller closes it."""
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file ({one_line(e)})") from None
    try:
        fmt = _str_attr(f.attrs, "format")
        if fmt != FORMAT:
            raise DatasetError(f"{path}: root attribute format is {fmt!r}, expected {FORMAT!r}")
        ver = f.attrs.get("version")
        if not _is_int(ver) or int(_scalar(ver)) != VERSION:
            raise DatasetError(f"{path}: unsupported version {ver!r} (this reader knows {VERSION})")
        if not isinstance(f.get("cases"), h5py.Group):
            raise DatasetError(f"{path}: missing group /cases")
    except DatasetError:
        f.close()
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        f.close()
        raise DatasetError(f"{path}: cannot read root attributes ({one_line(e)})") from None
    return f


def case_names(f):
    """Case names in the file's (alphabetical) link order."""
    return list(f["cases"].keys())


def read_case(f, name, path):
    """Reads and validates /cases/<name>. Raises DatasetError on anything the schema rejects."""
    where = f"{path}: case '{name}'"
    try:
        return _read_case(f, name, where)
    except DatasetError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise DatasetError(f"{where}: cannot read ({one_line(e)})") from None


def _read_case(f, name, where):
    grp = f["cases"].get(name)
    if not isinstance(grp, h5py.Group):
        raise DatasetError(f"{where}: no such case")
    c = CaseInputs(name)

    scale = grp.attrs.get("scale")
    if not _is_real(scale) or not np.isfinite(float(_scalar(scale))):
        raise DatasetError(f"{where}: attribute scale: missing or not a finite number")
    c.scale = float(_scalar(scale))
    for attr in ("chunk_size", "qk_l2norm"):
        val = grp.attrs.get(attr)
        if not _is_int(val):
            raise DatasetError(f"{where}: attribute {attr}: missing or not an integer")
        setattr(c, attr, int(_scalar(val)))
    if c.chunk_size < 1:
        raise DatasetError(f"{where}: attribute chunk_size: {c.chunk_size} is not positive")
    if c.qk_l2norm not in (0, 1):
        raise DatasetError(f"{where}: attribute qk_l2norm: {c.qk_l2norm} is neither 0 nor 1")
    c.attrs = {k: grp.attrs[k] for k in grp.attrs.keys()}

    inputs = grp.get("inputs")
    if not isinstance(inputs, h5py.Group):
        raise DatasetError(f"{where}: missing group inputs")
    for field in ("q", "k", "v", "g", "beta", "initial_state"):
        ds = inputs.get(field)
        if ds is None and field == "initial_state":
            continue
        if not isinstance(ds, h5py.Dataset):
            raise DatasetError(f"{where}: field inputs/{field}: missing dataset")
        c.arrays[field], c.dtypes[field] = _read_float(ds, f"{where}: field inputs/{field}")

    q, k, v, g, beta = (c.arrays[n] for n in ("q", "k", "v", "g", "beta"))
    _check_rank(q, 4, where, "q")
    c.B, c.T, c.H, c.K = q.shape
    _check_rank(v, 4, where, "v")
    c.HV, c.V = v.shape[2], v.shape[3]
    _check_shape(k, q.shape, where, "k")
    _check_shape(v, (c.B, c.T, c.HV, c.V), where, "v")
    _check_shape(g, (c.B, c.T, c.HV), where, "g")
    _check_shape(beta, (c.B, c.T, c.HV), where, "beta")
    for dim, val in (("B", c.B), ("H", c.H), ("HV", c.HV), ("K", c.K), ("V", c.V)):
        if val < 1:
            raise DatasetError(f"{where}: field inputs: dimension {dim} is {val}")
    if c.HV % c.H:
        raise DatasetError(f"{where}: field inputs/v: H={c.H} does not divide HV={c.HV}")

    c.N = c.B
    cu = inputs.get("cu_seqlens")
    if cu is not None:
        fld = f"{where}: field inputs/cu_seqlens"
        if not isinstance(cu, h5py.Dataset):
            raise DatasetError(f"{fld}: not a dataset")
        tid = cu.id.get_type()
        if (tid.get_class() != h5py.h5t.INTEGER or tid.get_size() not in (4, 8)
                or tid.get_sign() != h5py.h5t.SGN_2 or tid.get_order() != h5py.h5t.ORDER_LE):
            raise DatasetError(f"{fld}: unsupported type (need int32 or int64)")
        if len(cu.shape) != 1 or cu.shape[0] < 2:
            raise DatasetError(f"{fld}: shape {cu.shape}, need [N + 1] with N >= 1")
        arr = np.asarray(cu[()], dtype=np.int64)
        if c.B != 1:
            raise DatasetError(f"{fld}: given with B = {c.B} (must be 1)")
        if arr[0] != 0:
            raise DatasetError(f"{fld}: starts at {arr[0]}, not 0")
        if np.any(np.diff(arr) < 0):
            raise DatasetError(f"{fld}: decreasing")
        if arr[-1] != c.T:
            raise DatasetError(f"{fld}: ends at {arr[-1]}, not T = {c.T}")
        c.cu_seqlens = arr
        c.N = len(arr) - 1
    if "initial_state" in c.arrays:
        _check_shape(c.arrays["initial_state"], (c.N, c.HV, c.K, c.V), where, "initial_state")
    return c


def _read_float(ds, fld):
    tid = ds.id.get_type()
    name = float_type_name(tid)
    if name is None:
        raise DatasetError(f"{fld}: unsupported element type {ds.dtype} (need float64/32/16 or bfloat16)")
    if name in ("bfloat16", "float16"):
        # Read the raw 16-bit patterns (memory type = file type) and widen them ourselves:
        # exact, fast, and independent of which numpy type a given h5py version picks.
        bits = np.empty(ds.shape, dtype=np.uint16)
        if bits.size:
            ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, bits, mtype=tid)
        arr = bf16_bits_to_f32(bits) if name == "bfloat16" else bits.view(np.float16).astype(np.float32)
    else:
        arr = np.empty(ds.shape, dtype=np.float64 if name == "float64" else np.float32)
        if arr.size:
            ds.read_direct(arr)
    if not np.all(np.isfinite(arr)):
        raise DatasetError(f"{fld}: contains NaN or Inf")
    return arr, name


def _check_rank(a, rank, where, field):
    if a.ndim != rank:
        raise DatasetError(f"{where}: field inputs/{field}: rank {a.ndim}, expected {rank}")


def _check_shape(a, shape, where, field):
    if tuple(a.shape) != tuple(shape):
        raise DatasetError(f"{where}: field inputs/{field}: shape {list(a.shape)}, expected {list(shape)}")


def _scalar(v):
    return np.asarray(v).reshape(-1)[0]


def _is_int(v):
    if isinstance(v, np.ndarray):
        return v.shape in ((), (1,)) and np.issubdtype(v.dtype, np.integer)
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v):
    return _is_int(v) or isinstance(v, (float, np.floating)) or (
        isinstance(v, np.ndarray) and v.shape in ((), (1,)) and np.issubdtype(v.dtype, np.floating))


def _str_attr(attrs, key):
    v = attrs.get(key)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v if isinstance(v, str) else None


def one_line(e):
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# ---------------------------------------------------------------------------------------------
# Writing. Objects are created through the low-level API so that no modification times are
# stored: the same data gives the same bytes.

def create_group(parent, name):
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))


def write_array(parent, name, data, dtype_name):
    """Writes `data` as dataset `name` stored as dtype_name.

    bfloat16: data is uint16 bit patterns (written as is) or float32 (rounded to nearest even).
    float16:  uint16 bit patterns, float16, or float32 (numpy's RNE).
    float32:  float32 or float16 (exact). float64: any float. int32 / int64: integers.
    Nothing is silently rounded twice: float64 data is refused for the 16-bit types.
    """
    data = np.asarray(data)
    if dtype_name == "bfloat16":
        tid = bf16_type()
        if data.dtype == np.uint16:
            buf = data
        elif data.dtype == np.float32:
            buf = f32_to_bf16_bits(data)
        else:
            raise TypeError(f"{name}: bfloat16 needs uint16 bits or float32, got {data.dtype}")
    elif dtype_name == "float16":
        tid = fp16_type()
        if data.dtype == np.uint16:
            buf = data
        elif data.dtype in (np.float16, np.float32):
            buf = data.astype(np.float16).view(np.uint16)
        else:
            raise TypeError(f"{name}: float16 needs uint16 bits, float16 or float32, got {data.dtype}")
    elif dtype_name == "float32":
        if data.dtype not in (np.float16, np.float32):
            raise TypeError(f"{name}: float32 needs float32 or float16 data, got {data.dtype}")
        tid, buf = h5py.h5t.IEEE_F32LE, data.astype("<f4")
    elif dtype_name == "float64":
        if not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"{name}: float64 needs float data, got {data.dtype}")
        tid, buf = h5py.h5t.IEEE_F64LE, data.astype("<f8")
    elif dtype_name in ("int32", "int64"):
        if not np.issubdtype(data.dtype, np.integer):
            raise TypeError(f"{name}: {dtype_name} needs integer data, got {data.dtype}")
        tid = h5py.h5t.STD_I32LE if dtype_name == "int32" else h5py.h5t.STD_I64LE
        buf = data.astype("<i4" if dtype_name == "int32" else "<i8")
    else:
        raise ValueError(f"{name}: unknown dtype name {dtype_name!r}")
    buf = np.ascontiguousarray(buf)

    space = h5py.h5s.create_simple(buf.shape) if buf.ndim else h5py.h5s.create(h5py.h5s.SCALAR)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_obj_track_times(False)
    dsid = h5py.h5d.create(parent.id, name.encode(), tid, space, dcpl=dcpl)
    if buf.size:
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, buf, mtype=tid)
    return h5py.Dataset(dsid)


def write_case_inputs(f, name, attrs, arrays, dtypes):
    """Creates /cases/<name> with attrs and inputs/<field> (for tests and hand-made samples)."""
    cases = f["cases"] if "cases" in f else create_group(f, "cases")
    grp = create_group(cases, name)
    for key, val in attrs.items():
        grp.attrs[key] = val
    inputs = create_group(grp, "inputs")
    for field, arr in arrays.items():
        write_array(inputs, field, arr, dtypes[field])
    return grp


class CapturedWriter:
    """Adds (or replaces) /cases/<case>/captured/<impl> groups, all or nothing.

    with CapturedWriter(input_path, output_path) as w:
        w.add(case, impl, attrs, [(name, array, dtype_name), ...])

    The input is copied to a temporary file next to the output, the copy is modified, and only
    a block that ends without an exception renames it onto the output path. On any failure the
    temporary file is removed; the input (and an existing output) are never touched.
    A replaced group's old storage stays unused inside the file (HDF5 does not shrink files).
    """

    def __init__(self, input_path, output_path):
        self.input_path = input_path
        self.output_path = output_path
        self.tmp = None
        self.f = None

    def __enter__(self):
        out_dir = os.path.dirname(os.path.abspath(self.output_path))
        # The name matches the repository's '*.tmp-*' ignore pattern.
        fd, self.tmp = tempfile.mkstemp(dir=out_dir, prefix=os.path.basename(self.output_path) + ".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(self.input_path, self.tmp)
            shutil.copymode(self.input_path, self.tmp)
            self.f = h5py.File(self.tmp, "r+")
        except BaseException:
            self._discard()
            raise
        return self

    def add(self, case, impl, attrs, arrays):
        case_grp = self.f["cases"].get(case)
        if not isinstance(case_grp, h5py.Group):
            raise KeyError(f"no case {case!r} in {self.input_path}")
        cap = case_grp.get("captured")
        if cap is None:
            cap = create_group(case_grp, "captured")
        if impl in cap:
            del cap[impl]
        grp = create_group(cap, impl)
        for key, val in attrs.items():
            grp.attrs[key] = val
        for name, arr, dtype_name in arrays:
            write_array(grp, name, arr, dtype_name)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._discard()
            return False
        try:
            self.f.close()
            self.f = None
            with open(self.tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp, self.output_path)
            self.tmp = None
        except BaseException:
            self._discard()
            raise
        return False

    def _discard(self):
        if self.f is not None:
            try:
                self.f.close()
            except Exception:
                pass
            self.f = None
        if self.tmp is not None and os.path.exists(self.tmp):
            os.unlink(self.tmp)
        self.tmp = None
