// divert/net/socket_options.hpp — opening a TCP socket for one address family
// and applying ConnectOptions to it before connect: interface (SO_BINDTODEVICE),
// bind address (with IP_BIND_ADDRESS_NO_PORT on Linux), keepalive and the misc
// options, each only to the family it belongs to.
//
// Errors: a failed step is reported as its std::error_code together with the
// g3proxy divert_tcp's key of the option that failed (e.g. "tcp_misc_opts.congestion_control"),
// so the user can see which setting the OS refused.
// Thread-safety: as for the socket passed in.
#pragma once

#include <system_error>

#include "divert/asio/ip/tcp.hpp"

#include "divert/export.hpp"
#include "divert/net/options.hpp"

namespace divert::net {

// Outcome of open_configured_socket / apply_socket_options.
struct SocketOptionResult {
  error_code error;              // empty on success
  const char* option = nullptr;  // key of the failed step ("open", "bind_ipv4", ...)
  explicit operator bool() const noexcept { return static_cast<bool>(error); }
};

// Applies options to an open socket of family `family` (interface, bind,
// keepalive, misc). Options of the other family are skipped.
DIVERT_EXPORT SocketOptionResult apply_socket_options(asio::ip::tcp::socket& socket,
                                                      AddressFamily family,
                                                      const ConnectOptions& options);

// Opens `socket` (which must be closed) for `family` and applies the options.
// On failure the socket is closed again.
DIVERT_EXPORT SocketOptionResult open_configured_socket(asio::ip::tcp::socket& socket,
                                                        AddressFamily family,
                                                        const ConnectOptions& options);

// Ends the delayed-ACK mode that a connect with
// ConnectOptions::delay_handshake_ack leaves behind after its first write
// (TCP_QUICKACK on; see that option): call it once that write has gone out.
// Best effort: nothing to do on a platform without TCP_QUICKACK, and a
// failure (a socket already reset) only leaves ACKs delayed. One setsockopt(2).
DIVERT_EXPORT void resume_quick_ack(asio::ip::tcp::socket& socket) noexcept;

// TCP Fast Open on a listening socket (the receiving side; Linux
// TCP_FASTOPEN): connections whose SYN carries a valid cookie and data are
// accepted with that data already readable, one round trip sooner; clients
// without a cookie get one in the SYN-ACK. `queue_len` (> 0) bounds the
// Fast Open requests not yet accepted (past it, SYNs are handled as plain
// ones). Call it on an open acceptor, before or after listen(). The kernel
// takes data in a SYN only with bit 1 (value 2) of net.ipv4.tcp_fastopen
// set (e.g. 3); without it the option is accepted and has no effect. Errors:
// invalid_argument for queue_len <= 0, operation_not_supported where the
// platform has no TCP_FASTOPEN, else setsockopt(2)'s error.
DIVERT_EXPORT error_code enable_fast_open(asio::ip::tcp::acceptor& acceptor, int queue_len);

// The family of an address, IPv4-mapped IPv6 counted as IPv6.
inline AddressFamily family_of(const asio::ip::address& a) noexcept {
  return a.is_v4() ? AddressFamily::ipv4 : AddressFamily::ipv6;
}

}  // namespace divert::net
