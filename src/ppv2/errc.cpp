#include "divert/ppv2/errc.hpp"

#include <string>

namespace divert::ppv2 {

#if defined(__GNUC__) && defined(__ELF__)
// See errc.hpp: made before any default-priority static constructor.
__attribute__((init_priority(101))) const std::error_code detail::kNoError{};
#endif

namespace {
class Ppv2Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "divert.ppv2"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::header_too_large:
        return "PROXY header exceeds the configured size cap";
      case errc::length_overflow:
        return "PROXY v2 address block and TLVs exceed 65535 bytes (u16 length field)";
      case errc::tlv_value_too_large:
        return "PROXY v2 TLV value longer than 65535 bytes";
      case errc::address_family_mismatch:
        return "PROXY v2 source and destination cannot be sent in one address family";
      case errc::unix_path_too_long:
        return "PROXY v2 AF_UNIX path longer than 108 bytes";
      case errc::buffer_too_small:
        return "output buffer too small for the PROXY header";
      case errc::invalid_tlv_value:
        return "PROXY v2 TLV value breaks the wire contract";
      case errc::bad_signature:
        return "not a PROXY v2 signature";
      case errc::bad_version:
        return "PROXY v2 version nibble is not 2";
      case errc::bad_command:
        return "PROXY v2 command is neither LOCAL nor PROXY";
      case errc::bad_family:
        return "PROXY v2 address family/transport byte is not defined";
      case errc::address_block_truncated:
        return "PROXY v2 length is shorter than the address block";
      case errc::tlv_overrun:
        return "PROXY v2 TLV runs past the header length";
      case errc::trailing_bytes:
        return "PROXY v2 stray bytes after the last TLV";
      case errc::crc_bad_length:
        return "PROXY v2 CRC32C TLV is not exactly 4 bytes or appears twice";
      case errc::crc_mismatch:
        return "PROXY v2 CRC32C checksum mismatch";
      case errc::unspec_rejected:
        return "PROXY v2 PROXY command with UNSPEC family refused";
      case errc::v1_bad_format:
        return "malformed PROXY v1 line";
      case errc::v1_too_long:
        return "PROXY v1 line longer than 107 bytes";
      case errc::not_proxy_protocol:
        return "stream does not start with a PROXY header";
      case errc::bad_upstream:
        return "divert upstream TLV (0xE0) is not host:port";
      case errc::bad_task_id:
        return "divert task id TLV (0xE3) is not 16 bytes";
      case errc::duplicate_tlv:
        return "divert TLV (0xE0-0xE3 or 0xE7) appears more than once";
      case errc::bad_tls_name:
        return "divert TLS name TLV (0xE1) is empty or not UTF-8 without NUL";
      case errc::bad_username:
        return "divert username TLV (0xE2) is not UTF-8 without NUL";
      case errc::truncated:
        return "connection closed before a complete PROXY header";
      case errc::bad_status_request:
        return "divert status reply request TLV (0xE7) is not 1 byte";
    }
    return "unknown PROXY codec error";
  }
};
}  // namespace

const std::error_category& ppv2_category() noexcept {
  static const Ppv2Category cat;
  return cat;
}

std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), ppv2_category()};
}

}  // namespace divert::ppv2
