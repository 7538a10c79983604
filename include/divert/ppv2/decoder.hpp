// divert/ppv2/decoder.hpp — PROXY protocol v2 (and v1 text) decoder, sans-I/O.
//
// Two ways in:
//   * parse(bytes): stateless. Give it everything received so far (a prefix of the
//     stream); it answers need_more, complete (with `consumed` = 16 + len) or error.
//     The HeaderView points into your buffer (zero copy).
//   * Decoder: push chunks as they arrive; it copies only header bytes (never more
//     than 16 + len) and tells you how many bytes of each chunk it took, so the
//     rest of the chunk is payload. The view points into the Decoder.
// Strictness (doc/proxy-protocol.txt, haproxy):
//   * the signature is checked byte by byte: a wrong byte is an error as soon as it
//     arrives (error_offset says which);
//   * version nibble 2, command LOCAL(0)/PROXY(1), family byte one of
//     00 11 12 21 22 31 32 (everything else rejected, for both commands);
//   * 16 + len <= DecoderOptions::max_size (default 4096), checked as soon as the
//     16 fixed bytes are in, before waiting for the body;
//   * LOCAL: the body (len bytes) is skipped; addresses and TLVs are not
//     interpreted, as the spec says ("discard the protocol block");
//   * PROXY: the address block must fit in len; TLVs must end exactly at len
//     (1-2 stray bytes: trailing_bytes; a TLV running past len: tlv_overrun);
//     CRC32C, when present, must be 4 bytes, appear once and match (big-endian);
//   * PROXY + UNSPEC (0x00): accepted with src/dst of kind none, meaning "unknown:
//     use the real connection endpoints" (spec 2.2: "the receiver is free to accept
//     the connection anyway and use the real endpoint addresses"); TLVs are still
//     parsed. Set accept_proxy_unspec = false to reject it like HAProxy does.
//   * PROXY + UNIX (0x31/0x32): accepted; src/dst are unix paths (up to the first
//     NUL of each 108-byte field).
//   * UDP (0x12/0x22) is accepted and reported as Transport::dgram.
// v1 ("PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r\n", max 107 bytes) has its own entry
// point parse_v1(); parse_any() picks v1 or v2 from the first byte.
// Thread-safety: parse functions are pure; a Decoder is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "divert/export.hpp"
#include "divert/ppv2/errc.hpp"
#include "divert/ppv2/types.hpp"

namespace divert::ppv2 {

struct DecoderOptions {
  std::size_t max_size = kDefaultMaxSize;  // bytes, whole header (16 + len)
  bool verify_crc = true;                  // check a CRC32C TLV when present
  bool accept_proxy_unspec = true;         // PROXY with family 0x00 (see above)
};
namespace detail {
// The default options, as one object: a `= {}` default argument builds a
// temporary at every call.
inline constexpr DecoderOptions kDefaultDecoderOptions{};
}  // namespace detail

// Forward iterator over the TLVs of a decoded header (already validated).
class TlvIterator {
 public:
  using value_type = TlvView;
  using difference_type = std::ptrdiff_t;
  TlvIterator() = default;
  TlvIterator(const std::uint8_t* p, const std::uint8_t* end) noexcept : p_(p), end_(end) {}
  TlvView operator*() const noexcept { return {p_[0], {p_ + 3, len()}}; }
  TlvIterator& operator++() noexcept {
    p_ += 3 + len();
    if (p_ > end_) p_ = end_;  // cannot happen on a validated header; stay bounded anyway
    return *this;
  }
  TlvIterator operator++(int) noexcept {
    auto t = *this;
    ++*this;
    return t;
  }
  friend bool operator==(const TlvIterator& a, const TlvIterator& b) noexcept {
    return a.p_ == b.p_;
  }

 private:
  std::size_t len() const noexcept { return static_cast<std::size_t>(p_[1] << 8 | p_[2]); }
  const std::uint8_t* p_ = nullptr;
  const std::uint8_t* end_ = nullptr;
};

struct TlvRange {
  TlvIterator b, e;
  TlvIterator begin() const noexcept { return b; }
  TlvIterator end() const noexcept { return e; }
};

namespace detail {
// What parse()'s fast path found: a complete PROXY header over TCP/IPv4 (IpLen 4)
// or TCP/IPv6 (16) of `total` bytes at `d`. HeaderView and ParseResult have a
// constructor taking it (defined and used in decoder.cpp only) that writes every
// member once: default construction followed by assignments writes much of the
// 200-byte result twice, and stores are what a header decode is bound by. (An
// aggregate HeaderView built with designated initializers would do it too, but
// GCC 12 then clears the whole object with `rep stos` first.)
template <std::size_t IpLen>
struct ProxyTcp {
  const std::uint8_t* d;
  std::size_t total;
};
}  // namespace detail

// A decoded header: views into the bytes it was decoded from.
// Not an aggregate (see detail::ProxyTcp): a hand-made view is default-constructed
// and then assigned to.
struct DIVERT_EXPORT HeaderView {
  HeaderView() = default;
  template <std::size_t IpLen>
  inline explicit HeaderView(detail::ProxyTcp<IpLen> found) noexcept;  // parse() only

  int version = 2;                   // 2, or 1 for parse_v1()
  Command command = Command::proxy;  // v1 "UNKNOWN" is reported as PROXY with unspec family
  AddressFamily family = AddressFamily::unspec;
  Transport transport = Transport::unspec;
  Endpoint src;  // kind none for LOCAL, UNSPEC, v1 UNKNOWN
  Endpoint dst;
  std::span<const std::uint8_t> raw;        // the whole header (16 + len bytes; the v1 line)
  std::span<const std::uint8_t> tlv_bytes;  // the TLV area (empty for LOCAL and v1)
  std::optional<std::uint32_t> crc32c;      // the CRC32C value when the TLV was present

  // Where parse() found divert's TLVs 0xE0-0xE3, so that read_divert_tlvs() needs no
  // second walk over the TLVs. Used only while `base` == tlv_bytes.data() and `size`
  // == tlv_bytes.size(); otherwise (hand-made view, a divert TLV repeated, LOCAL, v1)
  // base is nullptr or stale and read_divert_tlvs() walks tlv_bytes itself.
  struct DivertIndex {
    const std::uint8_t* base = nullptr;  // tlv_bytes.data() when filled by parse()
    std::uint16_t size = 0;              // tlv_bytes.size() when filled by parse()
    std::uint16_t at[4] = {0, 0, 0, 0};  // offset of TLV 0xE0+k's value in tlv_bytes; 0: absent
  } divert_index;

  // True when src/dst carry addresses the receiver should use instead of the
  // real connection endpoints (PROXY with INET/INET6/UNIX).
  bool addresses_known() const noexcept { return src.kind != Endpoint::Kind::none; }
  TlvRange tlvs() const noexcept {
    auto* p = tlv_bytes.data();
    return {{p, p + tlv_bytes.size()}, {p + tlv_bytes.size(), p + tlv_bytes.size()}};
  }
  // First TLV of this type, if any.
  std::optional<TlvView> find(std::uint8_t type) const noexcept;
};

enum class ParseStatus { need_more, complete, error };

struct DIVERT_EXPORT ParseResult {
  ParseStatus status = ParseStatus::need_more;
  std::size_t consumed = 0;      // complete: header size (16 + len, or the v1 line)
  std::size_t need = 0;          // need_more: total bytes needed before the next step
  std::error_code ec = detail::no_error();  // error: what is wrong
  std::size_t error_offset = 0;  // error: offset of the offending byte in the header
  HeaderView header;             // complete: the header

  // Constructed once per header on the decoder's hot path: kept inline so that
  // the compiler drops the default stores parse() overwrites.
  [[gnu::always_inline]] ParseResult() noexcept {}
  template <std::size_t IpLen>
  inline explicit ParseResult(detail::ProxyTcp<IpLen> found) noexcept;  // parse() only
  bool complete() const noexcept { return status == ParseStatus::complete; }
  bool need_more() const noexcept { return status == ParseStatus::need_more; }
  bool error() const noexcept { return status == ParseStatus::error; }
  // Human-readable outcome; for errors "<ec.message()> (at byte N)".
  std::string message() const;
};

// v2 only. Never reads past 16 + len (or past bytes.size()).
DIVERT_EXPORT ParseResult parse(std::span<const std::uint8_t> bytes,
                                const DecoderOptions& opts = detail::kDefaultDecoderOptions) noexcept;
// v1 text line only ("PROXY TCP4|TCP6|UNKNOWN ...\r\n"), strict, at most 107 bytes.
DIVERT_EXPORT ParseResult parse_v1(std::span<const std::uint8_t> bytes) noexcept;
// v2 if the first byte is 0x0D, v1 if it is 'P', else errc::not_proxy_protocol.
DIVERT_EXPORT ParseResult parse_any(std::span<const std::uint8_t> bytes,
                                    const DecoderOptions& opts = detail::kDefaultDecoderOptions) noexcept;

// Push decoder (v2; v1 too when allow_v1). Feed chunks; each result's `consumed`
// is the number of bytes of *that chunk* that belonged to the header. After
// complete or error, further feeds return the same outcome and consume nothing.
// The header view points into the Decoder and stays valid until reset() or
// destruction (a Decoder is neither copyable nor movable). Storage: 536 bytes
// inline, heap only for larger headers.
class DIVERT_EXPORT Decoder {
 public:
  explicit Decoder(DecoderOptions opts = {}, bool allow_v1 = false) noexcept
      : opts_(opts), allow_v1_(allow_v1) {}
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  ParseResult feed(std::span<const std::uint8_t> chunk);
  const ParseResult& result() const noexcept { return last_; }
  void reset() noexcept;

 private:
  std::span<const std::uint8_t> buffered() const noexcept {
    return {heap_.empty() ? inline_ : heap_.data(), size_};
  }
  DecoderOptions opts_;
  bool allow_v1_;
  std::uint8_t inline_[kInlineHeaderSize];
  std::vector<std::uint8_t> heap_;
  std::size_t size_ = 0;
  ParseResult last_;
};

// ---- typed view of divert's application TLVs (0xE0-0xE3, 0xE7) ----

// 0xE0 parsed: "example.com:443" -> {example.com, 443}; "[2001:db8::1]:443" ->
// {2001:db8::1, 443, ipv6 = true}. Port 1..65535, decimal, no sign, no leading zeros.
// A host outside brackets: not empty, at most 253 bytes (254 ending in '.'), no
// control character (0x00-0x1F, 0x7F), space, ':', '[' or ']'. Inside brackets:
// an IPv6 literal.
struct UpstreamView {
  std::string_view host;  // without brackets
  std::uint16_t port = 0;
  bool ipv6_literal = false;
  friend bool operator==(const UpstreamView&, const UpstreamView&) = default;
};
DIVERT_EXPORT std::optional<UpstreamView> parse_upstream(std::string_view text) noexcept;

// An optional-like field of DivertTlvs. It reads like std::optional<T> (if (f),
// f->x, *f, has_value(), value(), value_or(), == with a T, a std::optional or
// std::nullopt, conversion to std::optional<T>) but default-constructs by setting
// one flag, without touching the payload: std::optional members make a default
// DivertTlvs a 128-byte memset, which costs more than reading the TLVs.
// T must be trivially copyable (string_view, UpstreamView, Uuid).
template <class T>
class TlvField {
 public:
  using value_type = T;
  constexpr TlvField() noexcept {}
  constexpr TlvField(std::nullopt_t) noexcept {}
  constexpr TlvField(const T& v) noexcept : v_(v), has_(true) {}
  TlvField(const TlvField&) = default;
  TlvField& operator=(const TlvField&) = default;
  TlvField& operator=(std::nullopt_t) noexcept {
    has_ = false;
    return *this;
  }
  TlvField& operator=(const T& v) noexcept {
    ::new (static_cast<void*>(&v_)) T(v);
    has_ = true;
    return *this;
  }

  constexpr bool has_value() const noexcept { return has_; }
  constexpr explicit operator bool() const noexcept { return has_; }
  // Unchecked access, like std::optional's (only when has_value()).
  constexpr const T& operator*() const noexcept { return v_; }
  constexpr T& operator*() noexcept { return v_; }
  constexpr const T* operator->() const noexcept { return &v_; }
  constexpr T* operator->() noexcept { return &v_; }
  // Checked access: throws std::bad_optional_access when empty.
  const T& value() const {
    if (!has_) throw std::bad_optional_access();
    return v_;
  }
  template <class U>
  T value_or(U&& fallback) const {
    return has_ ? v_ : static_cast<T>(std::forward<U>(fallback));
  }
  void reset() noexcept { has_ = false; }
  template <class... A>
  T& emplace(A&&... a) noexcept {
    ::new (static_cast<void*>(&v_)) T{std::forward<A>(a)...};
    has_ = true;
    return v_;
  }
  operator std::optional<T>() const noexcept {
    return has_ ? std::optional<T>(v_) : std::optional<T>();
  }

  friend bool operator==(const TlvField& a, std::nullopt_t) noexcept { return !a.has_; }
  friend bool operator==(const TlvField& a, const TlvField& b) noexcept {
    return a.has_ == b.has_ && (!a.has_ || a.v_ == b.v_);
  }
  template <class U>
  friend bool operator==(const TlvField& a, const std::optional<U>& b) {
    return a.has_ == b.has_value() && (!a.has_ || a.v_ == *b);
  }
  friend bool operator==(const TlvField& a, const T& b) noexcept { return a.has_ && a.v_ == b; }

 private:
  union {
    T v_;
  };
  bool has_ = false;
};

struct DivertTlvs {
  TlvField<std::string_view> upstream_text;  // 0xE0 raw
  TlvField<UpstreamView> upstream;           // 0xE0 parsed
  TlvField<std::string_view> tls_name;       // 0xE1 (not empty, UTF-8, no NUL)
  TlvField<std::string_view> username;       // 0xE2 (UTF-8, no NUL)
  TlvField<Uuid> task_id;                    // 0xE3
  // 0xE7: the status reply version the sender asks for (0x01 today; see
  // status_reply.hpp). A receiver answers only versions it knows.
  std::optional<std::uint8_t> status_reply;
};
// Reads 0xE0-0xE3 and 0xE7 from a decoded header, in one pass over the TLVs. Errors:
// bad_upstream (0xE0 not host:port as parse_upstream() takes it), bad_tls_name
// (0xE1 empty, or not UTF-8 without NUL), bad_username (0xE2 not UTF-8 without
// NUL), bad_task_id (0xE3 not 16 bytes), bad_status_request (0xE7 not 1 byte),
// duplicate_tlv. Absent TLVs stay empty; whether one is
// required is the caller's policy. Every field is reset first, so a DivertTlvs can be reused.
DIVERT_EXPORT std::error_code read_divert_tlvs(const HeaderView& h, DivertTlvs& out) noexcept;

}  // namespace divert::ppv2
