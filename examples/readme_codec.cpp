// README snippet: encode a divert PROXY v2 header, then decode it as a next proxy would.
#include <cstdio>

#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/encoder.hpp"

namespace ppv2 = divert::ppv2;

int main() {
  ppv2::HeaderSpec spec;                                                     // PROXY, TCP
  spec.src = *ppv2::Endpoint::ip_literal("192.0.2.10", 50000);               // the client
  spec.dst = *ppv2::Endpoint::ip_literal("198.51.100.1", 3128);              // where it connected
  spec.upstream = "example.com:443";                                         // TLV 0xE0
  spec.username = "alice";                                                   // TLV 0xE2
  spec.task_id = ppv2::Uuid::parse("0192f0c1-2b3c-7d4e-8f50-6172839405a6");  // TLV 0xE3
  spec.crc32c = true;

  ppv2::HeaderBuffer wire;  // no heap allocation up to 536 bytes
  if (auto ec = ppv2::encode(spec, wire))
    return std::printf("encode: %s\n", ec.message().c_str()), 1;

  // Receiving side: feed bytes as they arrive; `consumed` says where the payload starts.
  ppv2::Decoder decoder;  // strict, max 4096 bytes, CRC32C verified
  ppv2::ParseResult r = decoder.feed(wire.bytes());
  if (!r.complete()) return std::printf("decode: %s\n", r.message().c_str()), 1;

  ppv2::DivertTlvs tlvs;
  if (auto ec = ppv2::read_divert_tlvs(r.header, tlvs)) return 1;
  std::printf("%zu-byte header from %s:%u to %.*s port %u for %.*s, task %s\n", r.consumed,
              r.header.src.ip_string().c_str(), r.header.src.port, int(tlvs.upstream->host.size()),
              tlvs.upstream->host.data(), tlvs.upstream->port, int(tlvs.username->size()),
              tlvs.username->data(), tlvs.task_id->to_string().c_str());
}
