// A small RAII layer over the HDF5 C API: move-only handles that close themselves, typed
// attributes, whole-dataset reads into Tensor, and the schema's custom 16-bit float types.
// Every failure throws h5::Error with HDF5's own reason; callers add the file/case/field context.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "reference/tensor.hpp"

namespace gdnv::h5 {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Turns HDF5's automatic error printing off for the calling thread (in thread-safe builds the
// default error stack is per thread). Cheap and idempotent; every entry point calls it.
void silence_errors();

// The current thread's HDF5 error stack in one line: outermost reason, then the innermost cause.
std::string error_stack_message();

// While alive, a crash of the HDF5 library (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) or a
// metadata call that does not return within the hang limit prints one line naming the file to
// stderr ("gdnv: error: <path>: corrupt file: ...") and exits with status 2, as the schema demands
// of readers. HDF5 1.10 can segfault or spin forever on a corrupt global heap (the storage of
// variable-length strings) without ever reporting an error, so no API check can catch it.
// Bulk data reads are not timed (their duration depends on size), only crash-guarded.
// Meant for the single thread that does all HDF5 I/O; nested guards are no-ops.
class CorruptFileGuard {
 public:
  explicit CorruptFileGuard(std::string const& path);
  ~CorruptFileGuard();
  CorruptFileGuard(CorruptFileGuard const&) = delete;
  CorruptFileGuard& operator=(CorruptFileGuard const&) = delete;
  // Seconds one metadata call may take (default 60).
  static void set_hang_limit(double seconds);

 private:
  bool active_ = false;
};

// Owns one hid_t and closes it with `closer`; move-only.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(Handle const&) = delete;
  Handle& operator=(Handle const&) = delete;
  ~Handle() { reset(); }

  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() noexcept;  // close, ignoring errors (destructor path)
  void close();           // close, throwing Error when HDF5 reports a failure

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// --- types ----------------------------------------------------------------------------------

class Type : public Handle {
 public:
  Type() = default;
  explicit Type(hid_t id);  // takes ownership (H5Tclose)
};

// The schema's custom floats: bf16 (1-8-7, ebias 127) and fp16 (1-5-10, ebias 15), little-endian.
Type make_bf16_type();
Type make_fp16_type();

// The floating dtype whose exact bit layout `type` has (size, sign/exponent/mantissa fields,
// bias, implied normalization, little-endian), or nullopt. Never looks at names.
std::optional<DType> classify_float(hid_t type);
// A type in words for messages: "integer (4 bytes, signed)", "compound (8 bytes)",
// "float (1 byte: sign bit 7, exponent bits 3..6, mantissa bits 0..2, bias 7)".
std::string describe_type(hid_t type);

// --- objects --------------------------------------------------------------------------------

// Anything that carries attributes: a group (also the root group) or a dataset.
class Object : public Handle {
 public:
  using Handle::Handle;

  bool has_attr(std::string const& name) const;
  // Attribute names in name order.
  std::vector<std::string> attr_names() const;
  // True when the attribute holds a string (fixed or variable length).
  bool attr_is_string(std::string const& name) const;
  // Readers: a scalar (or one-element) attribute of the right class, else Error.
  std::string attr_string(std::string const& name) const;
  int64_t attr_int(std::string const& name) const;     // integer (or integer enum, e.g. h5py bool)
  double attr_double(std::string const& name) const;   // float or integer

  // Writers: scalar attributes; an existing attribute of that name is replaced.
  // Strings are variable-length UTF-8, as h5py writes a Python str (it reads them back as str).
  void set_attr_string(std::string const& name, std::string const& value) const;
  void set_attr_int(std::string const& name, int64_t value) const;
  void set_attr_double(std::string const& name, double value) const;
};

class Dataset : public Object {
 public:
  Dataset() = default;
  explicit Dataset(hid_t id);  // takes ownership (H5Dclose)

  std::vector<int64_t> shape() const;
  Type type() const;
  // Whole dataset widened to double, tagged with its stored dtype. 16-bit floats are read raw
  // (memory type = file type) and widened here, which is exact and much faster than HDF5's
  // soft conversion. Error when the type is not fp64/fp32/fp16/bf16.
  Tensor read_float() const;
  // A 32- or 64-bit signed integer dataset of any shape, flattened.
  std::vector<int64_t> read_ints() const;
};

enum class Kind { missing, group, dataset, other };

// Bytes above which write_tensor uses chunked storage with shuffle + deflate.
inline constexpr int64_t kCompressAbove = 4096;

class Group : public Object {
 public:
  Group() = default;
  explicit Group(hid_t id);  // takes ownership (H5Gclose)

  // What a direct child `name` is (missing when there is no such link).
  Kind kind(std::string const& name) const;
  // Names of the direct children, in name order.
  std::vector<std::string> children() const;
  Group open_group(std::string const& name) const;
  Dataset open_dataset(std::string const& name) const;

  // New objects carry no time stamps, so equal content gives equal bytes.
  Group create_group(std::string const& name) const;
  // Writes t (shape and data) stored as `stored` (default: t.dtype). Floats of a lower
  // precision are rounded to nearest even. Arrays above kCompressAbove bytes are chunked
  // (about 64 tokens along axis 1) and compressed with shuffle + deflate(4).
  void write_tensor(std::string const& name, Tensor const& t) const;
  void write_tensor(std::string const& name, Tensor const& t, DType stored) const;
  void write_ints(std::string const& name, std::vector<int64_t> const& values) const;  // int64, 1-D
};

class File {
 public:
  static File open_read(std::string const& path);  // read-only
  static File open_rw(std::string const& path);    // read-write, existing file
  static File create(std::string const& path);     // truncates; no time stamps on objects

  Group root() const;
  hid_t id() const { return h_.id(); }
  // Flushes and closes; Error on failure. Open groups/datasets must be closed first.
  void close();

 private:
  explicit File(hid_t id);
  Handle h_;
};

}  // namespace gdnv::h5
