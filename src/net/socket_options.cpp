#include "divert/net/socket_options.hpp"

#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

namespace divert::net {
namespace {

error_code set_int(int fd, int level, int name, int value) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0)
    return error_code(std::error_code(errno, std::system_category()));
  return {};
}

int ceil_seconds(milliseconds d) {
  auto s = (d.count() + 999) / 1000;
  return static_cast<int>(s < 1 ? 1 : s);
}

}  // namespace

SocketOptionResult apply_socket_options(asio::ip::tcp::socket& socket, AddressFamily family,
                                        const ConnectOptions& o) {
  const int fd = socket.native_handle();
  const bool v4 = family == AddressFamily::ipv4;
  error_code ec;
  auto fail = [](error_code e, const char* name) { return SocketOptionResult{e, name}; };

  // The device first (g3's bind_interface): it also scopes the bind below.
  if (o.bind_interface) {
#ifdef SO_BINDTODEVICE
    const auto& name = *o.bind_interface;
    if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name.c_str(),
                     static_cast<socklen_t>(name.size() + 1)) != 0)
      return fail(error_code(std::error_code(errno, std::system_category())), "bind_interface");
#else
    return fail(std::make_error_code(std::errc::not_supported), "bind_interface");
#endif
  }

  // Bind first: IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(),
  // so many outgoing sockets can share a local address without exhausting ports.
  const auto& bind_addr = v4 ? o.bind_ipv4 : o.bind_ipv6;
  if (bind_addr) {
#ifdef IP_BIND_ADDRESS_NO_PORT
    if ((ec = set_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)))
      return fail(ec, "ip_bind_address_no_port");
#endif
    socket.bind(asio::ip::tcp::endpoint(*bind_addr, 0), ec);
    if (ec) return fail(ec, v4 ? "bind_ipv4" : "bind_ipv6");
  }

  const auto& ka = o.tcp_keepalive;
  if (ka.enable) {
    if ((ec = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1))) return fail(ec, "tcp_keepalive.enable");
    if ((ec = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, ceil_seconds(ka.idle_time))))
      return fail(ec, "tcp_keepalive.idle_time");
    if (ka.probe_interval &&
        (ec = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, ceil_seconds(*ka.probe_interval))))
      return fail(ec, "tcp_keepalive.probe_interval");
    if (ka.probe_count &&
        (ec = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, static_cast<int>(*ka.probe_count))))
      return fail(ec, "tcp_keepalive.probe_count");
  }

  const auto& m = o.tcp_misc_opts;
  if (m.no_delay && (ec = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1)))
    return fail(ec, "tcp_misc_opts.no_delay");
  if (m.max_segment_size &&
      (ec = set_int(fd, IPPROTO_TCP, TCP_MAXSEG, static_cast<int>(*m.max_segment_size))))
    return fail(ec, "tcp_misc_opts.max_segment_size");
  if (v4) {
    if (m.time_to_live && (ec = set_int(fd, IPPROTO_IP, IP_TTL, static_cast<int>(*m.time_to_live))))
      return fail(ec, "tcp_misc_opts.time_to_live");
    if (m.type_of_service && (ec = set_int(fd, IPPROTO_IP, IP_TOS, *m.type_of_service)))
      return fail(ec, "tcp_misc_opts.type_of_service");
  } else {
    if (m.hop_limit &&
        (ec = set_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, static_cast<int>(*m.hop_limit))))
      return fail(ec, "tcp_misc_opts.hop_limit");
    if (m.traffic_class && (ec = set_int(fd, IPPROTO_IPV6, IPV6_TCLASS, *m.traffic_class)))
      return fail(ec, "tcp_misc_opts.traffic_class");
  }
#ifdef TCP_CONGESTION
  if (m.congestion_control) {
    const auto& cc = *m.congestion_control;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc.data(),
                     static_cast<socklen_t>(cc.size())) != 0)
      return fail(error_code(std::error_code(errno, std::system_category())),
                  "tcp_misc_opts.congestion_control");
  }
#else
  if (m.congestion_control)
    return fail(std::make_error_code(std::errc::not_supported), "tcp_misc_opts.congestion_control");
#endif
#ifdef TCP_QUICKACK
  // Delayed-ACK ("pingpong") mode from the start: the ACK of the SYN-ACK
  // waits for the first write. The kernel leaves the mode on the SYN-ACK and
  // re-enters it on that quick first write; resume_quick_ack() ends it then.
  if (o.delay_handshake_ack && (ec = set_int(fd, IPPROTO_TCP, TCP_QUICKACK, 0)))
    return fail(ec, "delay_handshake_ack");
#endif
#ifdef SO_MARK
  if (m.netfilter_mark &&
      (ec = set_int(fd, SOL_SOCKET, SO_MARK, static_cast<int>(*m.netfilter_mark))))
    return fail(ec, "tcp_misc_opts.netfilter_mark");
#else
  if (m.netfilter_mark)
    return fail(std::make_error_code(std::errc::not_supported), "tcp_misc_opts.netfilter_mark");
#endif
  return {};
}

void resume_quick_ack(asio::ip::tcp::socket& socket) noexcept {
#ifdef TCP_QUICKACK
  if (socket.is_open()) (void)set_int(socket.native_handle(), IPPROTO_TCP, TCP_QUICKACK, 1);
#else
  (void)socket;
#endif
}

error_code enable_fast_open(asio::ip::tcp::acceptor& acceptor, int queue_len) {
  if (queue_len <= 0) return std::make_error_code(std::errc::invalid_argument);
#ifdef TCP_FASTOPEN
  return set_int(acceptor.native_handle(), IPPROTO_TCP, TCP_FASTOPEN, queue_len);
#else
  (void)acceptor;
  return std::make_error_code(std::errc::not_supported);
#endif
}

SocketOptionResult open_configured_socket(asio::ip::tcp::socket& socket, AddressFamily family,
                                          const ConnectOptions& options) {
  error_code ec;
  socket.open(family == AddressFamily::ipv4 ? asio::ip::tcp::v4() : asio::ip::tcp::v6(), ec);
  if (ec) return {ec, "open"};
  auto r = apply_socket_options(socket, family, options);
  if (r) {
    error_code ignored;
    socket.close(ignored);
  }
  return r;
}

}  // namespace divert::net
