#include "harness/h5.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <mutex>
#include <thread>

#include "reference/rounding.hpp"

namespace gdnv::h5 {

namespace {

// Refuse to allocate absurd amounts for a (possibly corrupt) declared shape: 2^34 elements
// is 128 GiB of doubles, far beyond any real case.
constexpr int64_t kMaxElements = int64_t{1} << 34;
// Target size of one compressed chunk.
constexpr int64_t kChunkBytes = int64_t{1} << 20;

// --- corrupt-file guard (see CorruptFileGuard); all HDF5 I/O happens on one thread ---------

constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
struct sigaction g_old_actions[std::size(kFatalSignals)];
// Prepared in advance: a signal handler may only write() and _exit().
char g_crash_msg[2048];
size_t g_crash_len = 0;
char g_hang_msg[2048];
size_t g_hang_len = 0;

std::atomic<bool> g_timing{false};       // a guard is active: metadata calls arm the deadline
std::atomic<int64_t> g_deadline_ns{0};   // steady-clock deadline of the call in flight, 0: none
std::atomic<int64_t> g_hang_limit_ns{int64_t{60} * 1000 * 1000 * 1000};
std::mutex g_guard_mutex;                // guards the watchdog state below
std::condition_variable g_guard_cv;
bool g_guard_active = false;
bool g_watchdog_stop = false;
std::thread g_watchdog;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "gdnv: error: <path>: corrupt file: <what>" and a newline, cut to fit; returns the length.
size_t format_guard_message(char (&buf)[2048], std::string const& path, char const* what) {
  int const n = std::snprintf(buf, sizeof buf, "gdnv: error: %s: corrupt file: %s\n", path.c_str(), what);
  if (n < 0) return 0;
  if (static_cast<size_t>(n) < sizeof buf) return static_cast<size_t>(n);
  buf[sizeof buf - 2] = '\n';
  return sizeof buf - 1;
}

void on_fatal_signal(int) {
  ssize_t const r = ::write(STDERR_FILENO, g_crash_msg, g_crash_len);
  (void)r;
  ::_exit(2);
}

void watchdog_loop() {
  std::unique_lock<std::mutex> lock(g_guard_mutex);
  while (!g_watchdog_stop) {
    g_guard_cv.wait_for(lock, std::chrono::milliseconds(50));
    int64_t const deadline = g_deadline_ns.load();
    if (deadline != 0 && now_ns() > deadline) {
      ssize_t const r = ::write(STDERR_FILENO, g_hang_msg, g_hang_len);
      (void)r;
      ::_exit(2);
    }
  }
}

// Arms the hang deadline for one metadata call (the outermost, when calls nest).
class MetadataTimer {
 public:
  MetadataTimer() {
    if (g_timing.load() && depth_++ == 0) {
      armed_ = true;
      g_deadline_ns.store(now_ns() + g_hang_limit_ns.load());
    }
  }
  ~MetadataTimer() {
    if (armed_ && --depth_ == 0) g_deadline_ns.store(0);
  }
  MetadataTimer(MetadataTimer const&) = delete;
  MetadataTimer& operator=(MetadataTimer const&) = delete;

 private:
  static thread_local int depth_;
  bool armed_ = false;
};
thread_local int MetadataTimer::depth_ = 0;

// --- errors ---------------------------------------------------------------------------------

std::string with_stack(std::string const& what) {
  std::string const stack = error_stack_message();
  return stack.empty() ? what : what + ": " + stack;
}

hid_t check_id(hid_t id, std::string const& what) {
  if (id < 0) throw Error(with_stack(what));
  return id;
}

void check(herr_t status, std::string const& what) {
  if (status < 0) throw Error(with_stack(what));
}

Handle make_plist(hid_t cls) { return Handle(check_id(H5Pcreate(cls), "H5Pcreate failed"), H5Pclose); }

Handle make_space(std::vector<int64_t> const& shape) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  hid_t const space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  return Handle(check_id(space, "H5Screate_simple failed"), H5Sclose);
}

std::vector<int64_t> space_shape(hid_t space) {
  H5S_class_t const cls = H5Sget_simple_extent_type(space);
  if (cls == H5S_NULL) throw Error("dataspace is null (no elements)");
  if (cls != H5S_SCALAR && cls != H5S_SIMPLE) throw Error("cannot read the dataspace");
  int const rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) throw Error(with_stack("cannot read the dataspace"));
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0)
    throw Error(with_stack("cannot read the dataspace"));
  std::vector<int64_t> shape;
  for (hsize_t d : dims) {
    if (d > static_cast<hsize_t>(kMaxElements)) throw Error("dimension " + std::to_string(d) + " is too large");
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

int64_t checked_numel(std::vector<int64_t> const& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d != 0 && n > kMaxElements / d) throw Error("shape " + shape_string(shape) + " is too large to read");
    n *= d;
  }
  return n;
}

std::string plural_bytes(size_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

// Little-endian layouts of the four supported floats.
struct FloatLayout {
  DType dtype;
  size_t size, spos, epos, esize, mpos, msize, ebias;
};
constexpr FloatLayout kLayouts[] = {
    {DType::f64, 8, 63, 52, 11, 0, 52, 1023},
    {DType::f32, 4, 31, 23, 8, 0, 23, 127},
    {DType::f16, 2, 15, 10, 5, 0, 10, 15},
    {DType::bf16, 2, 15, 7, 8, 0, 7, 127},
};

Type make_16bit_float(size_t epos, size_t esize, size_t msize, size_t ebias) {
  silence_errors();
  Type t(check_id(H5Tcopy(H5T_IEEE_F32LE), "H5Tcopy failed"));
  // Fields first: the size cannot shrink below fields that still sit in the upper bytes.
  check(H5Tset_fields(t.id(), 15, epos, esize, 0, msize), "H5Tset_fields failed");
  check(H5Tset_precision(t.id(), 16), "H5Tset_precision failed");
  check(H5Tset_size(t.id(), 2), "H5Tset_size failed");
  check(H5Tset_ebias(t.id(), ebias), "H5Tset_ebias failed");
  return t;
}

Handle open_attr(hid_t obj, std::string const& name) {
  silence_errors();
  if (H5Aexists(obj, name.c_str()) <= 0) throw Error("missing attribute");
  return Handle(check_id(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "cannot open attribute"), H5Aclose);
}

// Attributes we read must hold exactly one value (scalar, or a one-element array).
void require_single_value(hid_t attr) {
  Handle space(check_id(H5Aget_space(attr), "cannot read attribute dataspace"), H5Sclose);
  auto const shape = space_shape(space.id());
  if (checked_numel(shape) != 1) throw Error("expected a single value, found shape " + shape_string(shape));
}

Handle attr_type(hid_t attr) { return Handle(check_id(H5Aget_type(attr), "cannot read attribute type"), H5Tclose); }

// Creates (replacing any old one) a scalar attribute of file type `ftype` and writes `buf`.
void write_scalar_attr(hid_t obj, std::string const& name, hid_t ftype, hid_t mtype, void const* buf) {
  silence_errors();
  if (H5Aexists(obj, name.c_str()) > 0) check(H5Adelete(obj, name.c_str()), "cannot replace attribute " + name);
  Handle space(check_id(H5Screate(H5S_SCALAR), "H5Screate failed"), H5Sclose);
  Handle attr(check_id(H5Acreate2(obj, name.c_str(), ftype, space.id(), H5P_DEFAULT, H5P_DEFAULT),
                       "cannot create attribute " + name),
              H5Aclose);
  check(H5Awrite(attr.id(), mtype, buf), "cannot write attribute " + name);
  attr.close();
}

herr_t collect_attr_name(hid_t, char const* name, H5A_info_t const*, void* data) {
  try {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  } catch (...) {
    return -1;  // never let an exception cross the C library
  }
}

herr_t collect_error(unsigned n, H5E_error2_t const* e, void* data) {
  auto* msgs = static_cast<std::vector<std::string>*>(data);
  try {
    if (e && e->desc && *e->desc) msgs->emplace_back(e->desc);
  } catch (...) {
    return -1;
  }
  (void)n;
  return 0;
}

// Chunk shape for compressed storage: one batch row, about 64 tokens along axis 1 (the
// schema's T or NT), full inner axes; then halved, outermost axes first, to about 1 MiB.
std::vector<hsize_t> chunk_dims(std::vector<int64_t> const& shape, size_t elem) {
  std::vector<hsize_t> c(shape.begin(), shape.end());
  if (c.size() >= 2) c[0] = 1;
  if (c.size() >= 3) c[1] = std::min<hsize_t>(c[1], 64);
  auto bytes = [&] {
    hsize_t b = elem;
    for (hsize_t x : c) b *= x;
    return b;
  };
  for (size_t ax = 0; ax < c.size() && bytes() > static_cast<hsize_t>(kChunkBytes);) {
    if (c[ax] > 1)
      c[ax] = (c[ax] + 1) / 2;
    else
      ++ax;
  }
  return c;
}

Handle file_access_plist() {
  Handle fapl = make_plist(H5P_FILE_ACCESS);
#if (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7) || H5_VERSION_GE(1, 12, 1)
  // Keep HDF5's file locking, but do not fail on file systems that do not support it.
  check(H5Pset_file_locking(fapl.id(), true, true), "H5Pset_file_locking failed");
#endif
  return fapl;
}

}  // namespace

CorruptFileGuard::CorruptFileGuard(std::string const& path) {
  std::lock_guard<std::mutex> lock(g_guard_mutex);
  if (g_guard_active) return;  // nested: the outer guard already covers this
  g_guard_active = active_ = true;
  g_crash_len = format_guard_message(g_crash_msg, path, "the HDF5 library crashed while reading it");
  g_hang_len = format_guard_message(g_hang_msg, path, "the HDF5 library hung while reading its metadata");
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < std::size(kFatalSignals); ++i) sigaction(kFatalSignals[i], &sa, &g_old_actions[i]);
  g_watchdog_stop = false;
  try {
    g_watchdog = std::thread(watchdog_loop);
    g_timing.store(true);
  } catch (std::system_error const&) {
    // No thread available: keep the crash guard, go without hang detection.
  }
}

CorruptFileGuard::~CorruptFileGuard() {
  if (!active_) return;
  g_timing.store(false);
  g_deadline_ns.store(0);
  {
    std::lock_guard<std::mutex> lock(g_guard_mutex);
    g_watchdog_stop = true;
  }
  g_guard_cv.notify_all();
  if (g_watchdog.joinable()) g_watchdog.join();
  for (size_t i = 0; i < std::size(kFatalSignals); ++i) sigaction(kFatalSignals[i], &g_old_actions[i], nullptr);
  std::lock_guard<std::mutex> lock(g_guard_mutex);
  g_guard_active = false;
}

void CorruptFileGuard::set_hang_limit(double seconds) {
  g_hang_limit_ns.store(static_cast<int64_t>(seconds * 1e9));
}

void silence_errors() {
  thread_local bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

std::string error_stack_message() {
  std::vector<std::string> msgs;  // innermost first
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_error, &msgs);
  if (msgs.empty()) return {};
  std::string out = msgs.back();
  if (msgs.size() > 1 && msgs.front() != msgs.back()) out += ": " + msgs.front();
  for (char& ch : out)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return out;
}

// --- Handle ---------------------------------------------------------------------------------

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::reset() noexcept {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = H5I_INVALID_HID;
}

void Handle::close() {
  if (id_ < 0) return;
  hid_t const id = id_;
  id_ = H5I_INVALID_HID;
  if (closer_ && closer_(id) < 0) throw Error(with_stack("closing an HDF5 object failed"));
}

// --- types ----------------------------------------------------------------------------------

Type::Type(hid_t id) : Handle(id, H5Tclose) {}

Type make_bf16_type() { return make_16bit_float(7, 8, 7, 127); }
Type make_fp16_type() { return make_16bit_float(10, 5, 10, 15); }

std::optional<DType> classify_float(hid_t type) {
  silence_errors();
  if (H5Tget_class(type) != H5T_FLOAT || H5Tget_order(type) != H5T_ORDER_LE) return std::nullopt;
  size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
  if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0) return std::nullopt;
  size_t const size = H5Tget_size(type);
  size_t const ebias = H5Tget_ebias(type);
  if (H5Tget_offset(type) != 0 || H5Tget_precision(type) != 8 * size || H5Tget_norm(type) != H5T_NORM_IMPLIED)
    return std::nullopt;
  for (auto const& l : kLayouts)
    if (size == l.size && spos == l.spos && epos == l.epos && esize == l.esize && mpos == l.mpos &&
        msize == l.msize && ebias == l.ebias)
      return l.dtype;
  return std::nullopt;
}

std::string describe_type(hid_t type) {
  silence_errors();
  size_t const size = H5Tget_size(type);
  bool const big_endian = H5Tget_order(type) == H5T_ORDER_BE;
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return std::string(big_endian ? "big-endian " : "") + "integer (" + plural_bytes(size) +
             (H5Tget_sign(type) == H5T_SGN_NONE ? ", unsigned)" : ", signed)");
    case H5T_FLOAT: {
      size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
      H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize);
      auto bits = [](size_t pos, size_t n) {
        return n == 0 ? std::string("none") : std::to_string(pos) + ".." + std::to_string(pos + n - 1);
      };
      return std::string(big_endian ? "big-endian " : "") + "float (" + plural_bytes(size) + ": sign bit " +
             std::to_string(spos) + ", exponent bits " + bits(epos, esize) + ", mantissa bits " + bits(mpos, msize) +
             ", bias " + std::to_string(H5Tget_ebias(type)) + ")";
    }
    case H5T_STRING: return "string";
    case H5T_COMPOUND: {
      std::string s = "compound (" + plural_bytes(size);
      int const n = H5Tget_nmembers(type);
      for (int i = 0; i < n && i < 4; ++i) {
        char* name = H5Tget_member_name(type, static_cast<unsigned>(i));
        s += i == 0 ? ", members " : ", ";
        s += name ? name : "?";
        if (name) H5free_memory(name);
      }
      return s + (n > 4 ? ", ...)" : ")");
    }
    case H5T_OPAQUE: return "opaque (" + plural_bytes(size) + ")";
    case H5T_BITFIELD: return "bitfield (" + plural_bytes(size) + ")";
    case H5T_ENUM: return "enum (" + plural_bytes(size) + ")";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_ARRAY: return "array type (" + plural_bytes(size) + ")";
    case H5T_REFERENCE: return "reference";
    case H5T_TIME: return "time";
    default: return "unknown type";
  }
}

// --- Object (attributes) --------------------------------------------------------------------

bool Object::has_attr(std::string const& name) const {
  MetadataTimer const timer;
  silence_errors();
  return H5Aexists(id(), name.c_str()) > 0;
}

std::vector<std::string> Object::attr_names() const {
  MetadataTimer const timer;
  silence_errors();
  std::vector<std::string> names;
  hsize_t idx = 0;
  check(H5Aiterate2(id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr_name, &names), "cannot list attributes");
  return names;
}

bool Object::attr_is_string(std::string const& name) const {
  MetadataTimer const timer;
  Handle attr = open_attr(id(), name);
  Handle t = attr_type(attr.id());
  return H5Tget_class(t.id()) == H5T_STRING;
}

std::string Object::attr_string(std::string const& name) const {
  MetadataTimer const timer;
  Handle attr = open_attr(id(), name);
  Handle ftype = attr_type(attr.id());
  if (H5Tget_class(ftype.id()) != H5T_STRING)
    throw Error("expected a string, found " + describe_type(ftype.id()));
  require_single_value(attr.id());
  htri_t const vlen = H5Tis_variable_str(ftype.id());
  check(vlen, "cannot read attribute type");
  if (vlen > 0) {
    Handle mtype(check_id(H5Tcopy(H5T_C_S1), "H5Tcopy failed"), H5Tclose);
    check(H5Tset_size(mtype.id(), H5T_VARIABLE), "H5Tset_size failed");
    check(H5Tset_cset(mtype.id(), H5Tget_cset(ftype.id())), "H5Tset_cset failed");
    char* p = nullptr;
    check(H5Aread(attr.id(), mtype.id(), &p), "cannot read attribute");
    std::string s = p ? p : "";
    if (p) H5free_memory(p);
    return s;
  }
  // Fixed length: read the raw bytes, stop at the first NUL, drop space padding.
  size_t const size = H5Tget_size(ftype.id());
  std::vector<char> buf(size + 1, '\0');
  check(H5Aread(attr.id(), ftype.id(), buf.data()), "cannot read attribute");
  std::string s(buf.data());
  if (H5Tget_strpad(ftype.id()) == H5T_STR_SPACEPAD)
    while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

int64_t Object::attr_int(std::string const& name) const {
  MetadataTimer const timer;
  Handle attr = open_attr(id(), name);
  Handle ftype = attr_type(attr.id());
  require_single_value(attr.id());
  H5T_class_t const cls = H5Tget_class(ftype.id());
  if (cls == H5T_INTEGER) {
    int64_t v = 0;
    check(H5Aread(attr.id(), H5T_NATIVE_INT64, &v), "cannot read attribute");
    return v;
  }
  if (cls == H5T_ENUM) {
    // h5py stores numpy bools as an int8 enum; HDF5 will not convert enum -> int, so read the
    // raw value and convert it from the enum's base integer type.
    Handle base(check_id(H5Tget_super(ftype.id()), "cannot read enum base type"), H5Tclose);
    size_t const size = H5Tget_size(ftype.id());
    if (H5Tget_class(base.id()) == H5T_INTEGER && size <= 8) {
      unsigned char buf[8] = {};
      check(H5Aread(attr.id(), ftype.id(), buf), "cannot read attribute");
      check(H5Tconvert(base.id(), H5T_NATIVE_INT64, 1, buf, nullptr, H5P_DEFAULT), "cannot convert attribute");
      int64_t v = 0;
      std::memcpy(&v, buf, sizeof v);
      return v;
    }
  }
  throw Error("expected an integer, found " + describe_type(ftype.id()));
}

double Object::attr_double(std::string const& name) const {
  MetadataTimer const timer;
  Handle attr = open_attr(id(), name);
  Handle ftype = attr_type(attr.id());
  require_single_value(attr.id());
  H5T_class_t const cls = H5Tget_class(ftype.id());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) throw Error("expected a number, found " + describe_type(ftype.id()));
  double v = 0;
  check(H5Aread(attr.id(), H5T_NATIVE_DOUBLE, &v), "cannot read attribute");
  return v;
}

void Object::set_attr_string(std::string const& name, std::string const& value) const {
  Handle type(check_id(H5Tcopy(H5T_C_S1), "H5Tcopy failed"), H5Tclose);
  check(H5Tset_size(type.id(), H5T_VARIABLE), "H5Tset_size failed");
  check(H5Tset_cset(type.id(), H5T_CSET_UTF8), "H5Tset_cset failed");
  char const* p = value.c_str();
  write_scalar_attr(id(), name, type.id(), type.id(), &p);
}

void Object::set_attr_int(std::string const& name, int64_t value) const {
  write_scalar_attr(id(), name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void Object::set_attr_double(std::string const& name, double value) const {
  write_scalar_attr(id(), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

// --- Dataset --------------------------------------------------------------------------------

Dataset::Dataset(hid_t id) : Object(id, H5Dclose) {}

std::vector<int64_t> Dataset::shape() const {
  MetadataTimer const timer;
  silence_errors();
  Handle space(check_id(H5Dget_space(id()), "cannot read the dataspace"), H5Sclose);
  return space_shape(space.id());
}

Type Dataset::type() const {
  MetadataTimer const timer;
  silence_errors();
  return Type(check_id(H5Dget_type(id()), "cannot read the datatype"));
}

Tensor Dataset::read_float() const {
  Type const ftype = type();
  std::optional<DType> const dt = classify_float(ftype.id());
  if (!dt) throw Error("unsupported dtype " + describe_type(ftype.id()) + "; expected fp64, fp32, fp16 or bf16");
  Tensor t;
  t.shape = shape();
  t.dtype = *dt;
  int64_t const n = checked_numel(t.shape);
  t.data.resize(static_cast<size_t>(n));
  if (n == 0) return t;
  switch (*dt) {
    case DType::f64:
      check(H5Dread(id(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data.data()), "read failed");
      break;
    case DType::f32: {
      std::vector<float> buf(static_cast<size_t>(n));
      check(H5Dread(id(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), "read failed");
      std::copy(buf.begin(), buf.end(), t.data.begin());
      break;
    }
    case DType::f16:
    case DType::bf16: {
      // Raw bits: memory type = the (little-endian) file type, so HDF5 converts nothing.
      std::vector<uint16_t> buf(static_cast<size_t>(n));
      check(H5Dread(id(), ftype.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), "read failed");
      auto const widen = *dt == DType::bf16 ? bf16_bits_to_double : fp16_bits_to_double;
      std::transform(buf.begin(), buf.end(), t.data.begin(), widen);
      break;
    }
    default: break;
  }
  return t;
}

std::vector<int64_t> Dataset::read_ints() const {
  Type const ftype = type();
  size_t const size = H5Tget_size(ftype.id());
  if (H5Tget_class(ftype.id()) != H5T_INTEGER || H5Tget_sign(ftype.id()) != H5T_SGN_2 || (size != 4 && size != 8))
    throw Error("unsupported dtype " + describe_type(ftype.id()) + "; expected int32 or int64");
  int64_t const n = checked_numel(shape());
  std::vector<int64_t> v(static_cast<size_t>(n));
  if (n > 0) check(H5Dread(id(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "read failed");
  return v;
}

// --- Group ----------------------------------------------------------------------------------

Group::Group(hid_t id) : Object(id, H5Gclose) {}

Kind Group::kind(std::string const& name) const {
  MetadataTimer const timer;
  silence_errors();
  if (name.empty() || H5Lexists(id(), name.c_str(), H5P_DEFAULT) <= 0) return Kind::missing;
  hid_t const obj = H5Oopen(id(), name.c_str(), H5P_DEFAULT);
  if (obj < 0) return Kind::other;  // e.g. a dangling soft link
  H5I_type_t const t = H5Iget_type(obj);
  H5Oclose(obj);
  return t == H5I_GROUP ? Kind::group : t == H5I_DATASET ? Kind::dataset : Kind::other;
}

std::vector<std::string> Group::children() const {
  MetadataTimer const timer;
  silence_errors();
  H5G_info_t info{};
  check(H5Gget_info(id(), &info), "cannot list the group");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t const len = H5Lget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) throw Error(with_stack("cannot list the group"));
    std::vector<char> buf(static_cast<size_t>(len) + 1, '\0');
    if (H5Lget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, buf.data(), buf.size(), H5P_DEFAULT) < 0)
      throw Error(with_stack("cannot list the group"));
    names.emplace_back(buf.data());
  }
  return names;
}

Group Group::open_group(std::string const& name) const {
  MetadataTimer const timer;
  silence_errors();
  return Group(check_id(H5Gopen2(id(), name.c_str(), H5P_DEFAULT), "cannot open group " + name));
}

Dataset Group::open_dataset(std::string const& name) const {
  MetadataTimer const timer;
  silence_errors();
  return Dataset(check_id(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), "cannot open dataset " + name));
}

Group Group::create_group(std::string const& name) const {
  silence_errors();
  Handle gcpl = make_plist(H5P_GROUP_CREATE);
  check(H5Pset_obj_track_times(gcpl.id(), false), "H5Pset_obj_track_times failed");
  return Group(check_id(H5Gcreate2(id(), name.c_str(), H5P_DEFAULT, gcpl.id(), H5P_DEFAULT),
                       "cannot create group " + name));
}

void Group::write_tensor(std::string const& name, Tensor const& t) const { write_tensor(name, t, t.dtype); }

void Group::write_tensor(std::string const& name, Tensor const& t, DType stored) const {
  silence_errors();
  if (t.shape.empty()) throw Error("cannot write " + name + ": tensor has no shape");
  int64_t const n = checked_numel(t.shape);
  if (static_cast<int64_t>(t.data.size()) != n)
    throw Error("cannot write " + name + ": " + std::to_string(t.data.size()) + " values for shape " +
                shape_string(t.shape));

  // File type, memory type and the buffer in memory layout.
  Type custom;
  hid_t ftype = H5T_IEEE_F64LE, mtype = H5T_NATIVE_DOUBLE;
  void const* buf = t.data.data();
  std::vector<float> f32;
  std::vector<uint16_t> bits;
  std::vector<int64_t> ints;
  size_t elem = 8;
  switch (stored) {
    case DType::f64: break;
    case DType::f32:
      ftype = H5T_IEEE_F32LE;
      mtype = H5T_NATIVE_FLOAT;
      elem = 4;
      f32.assign(t.data.begin(), t.data.end());  // double -> float rounds to nearest even
      buf = f32.data();
      break;
    case DType::f16:
    case DType::bf16: {
      custom = stored == DType::bf16 ? make_bf16_type() : make_fp16_type();
      ftype = mtype = custom.id();  // raw bits: memory type = file type
      elem = 2;
      auto const encode = stored == DType::bf16 ? double_to_bf16_bits : double_to_fp16_bits;
      bits.resize(t.data.size());
      std::transform(t.data.begin(), t.data.end(), bits.begin(), encode);
      buf = bits.data();
      break;
    }
    case DType::i32:
    case DType::i64:
      ftype = stored == DType::i32 ? H5T_STD_I32LE : H5T_STD_I64LE;
      mtype = H5T_NATIVE_INT64;
      elem = stored == DType::i32 ? 4 : 8;
      ints.resize(t.data.size());
      std::transform(t.data.begin(), t.data.end(), ints.begin(), [](double x) { return static_cast<int64_t>(x); });
      buf = ints.data();
      break;
  }

  Handle space = make_space(t.shape);
  Handle dcpl = make_plist(H5P_DATASET_CREATE);
  check(H5Pset_obj_track_times(dcpl.id(), false), "H5Pset_obj_track_times failed");
  if (n * static_cast<int64_t>(elem) > kCompressAbove) {
    auto const chunk = chunk_dims(t.shape, elem);
    check(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()), "H5Pset_chunk failed");
    check(H5Pset_shuffle(dcpl.id()), "H5Pset_shuffle failed");
    check(H5Pset_deflate(dcpl.id(), 4), "H5Pset_deflate failed");
  }
  Dataset ds(check_id(H5Dcreate2(id(), name.c_str(), ftype, space.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
                      "cannot create dataset " + name));
  if (n > 0) check(H5Dwrite(ds.id(), mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "cannot write dataset " + name);
  ds.close();
}

void Group::write_ints(std::string const& name, std::vector<int64_t> const& values) const {
  silence_errors();
  Handle space = make_space({static_cast<int64_t>(values.size())});
  Handle dcpl = make_plist(H5P_DATASET_CREATE);
  check(H5Pset_obj_track_times(dcpl.id(), false), "H5Pset_obj_track_times failed");
  Dataset ds(check_id(H5Dcreate2(id(), name.c_str(), H5T_STD_I64LE, space.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
                      "cannot create dataset " + name));
  if (!values.empty())
    check(H5Dwrite(ds.id(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
          "cannot write dataset " + name);
  ds.close();
}

// --- File -----------------------------------------------------------------------------------

File::File(hid_t id) : h_(id, H5Fclose) {}

File File::open_read(std::string const& path) {
  MetadataTimer const timer;
  silence_errors();
  Handle fapl = file_access_plist();
  return File(check_id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.id()), "cannot open as HDF5"));
}

File File::open_rw(std::string const& path) {
  silence_errors();
  Handle fapl = file_access_plist();
  return File(check_id(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.id()), "cannot open as HDF5 for writing"));
}

File File::create(std::string const& path) {
  silence_errors();
  // The file creation list derives from the group creation list: this keeps the root group
  // free of time stamps too.
  Handle fcpl = make_plist(H5P_FILE_CREATE);
  check(H5Pset_obj_track_times(fcpl.id(), false), "H5Pset_obj_track_times failed");
  Handle fapl = file_access_plist();
  // SEMI: closing fails loudly (instead of silently deferring) if an object is still open.
  check(H5Pset_fclose_degree(fapl.id(), H5F_CLOSE_SEMI), "H5Pset_fclose_degree failed");
  return File(check_id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id()), "cannot create file"));
}

Group File::root() const {
  MetadataTimer const timer;
  silence_errors();
  return Group(check_id(H5Gopen2(h_.id(), "/", H5P_DEFAULT), "cannot open the root group"));
}

void File::close() {
  silence_errors();
  h_.close();
}

}  // namespace gdnv::h5
