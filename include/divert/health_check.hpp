// divert/health_check.hpp — active health checks of next proxies: configuration.
//
// When enabled, each next proxy is probed every `interval`: a TCP connect
// (happy eyeballs through the connector's resolver for a domain next proxy,
// resolved again on every probe so the check follows new addresses; one
// attempt for an IP literal), then a PROXY v2 header with the LOCAL command
// (the PROXY spec's command for health checks; HAProxy's check-send-proxy
// sends the same 16 bytes). A probe succeeds when the connection is accepted
// and not reset within `timeout`: it passes as soon as the next proxy closes
// cleanly (the divert Receiver does after a LOCAL header), or when `timeout`
// has elapsed with the connection open (HAProxy accept-proxy keeps it); a
// connect error or timeout, or a reset, fails it. The probe then closes. `fall` consecutive
// failures mark a next proxy down, `rise` consecutive successes mark it up again; a next proxy
// starts up. Down next proxies are skipped by selection as passively ejected ones are; when every
// next proxy is down or ejected, all are tried.
//
// Builder key `health_check` (g3proxy's duration syntax, config_value.hpp):
//   health_check: {interval: 5s, timeout: 2s, rise: 2, fall: 3}
// A map turns the check on (`enable`/`enabled: false` inside it turns it off);
// fields left out keep the defaults below. A scalar true/false only switches it.
//
// Thread-safety: a value type.
#pragma once

#include <chrono>
#include <cstdint>

#include "divert/export.hpp"

namespace divert {

struct DIVERT_EXPORT HealthCheckConfig {
  bool enabled = false;                      // off by default
  std::chrono::milliseconds interval{5000};  // between two probes of one next proxy; > 0
  std::chrono::milliseconds timeout{2000};   // connect + header + watch, per probe; > 0
  std::uint32_t rise = 2;                    // consecutive successes to mark up; >= 1
  std::uint32_t fall = 3;                    // consecutive failures to mark down; >= 1

  // Throws config_error naming "health_check.<field>" when a field is out of
  // range (interval or timeout <= 0, rise or fall 0). Checked whether or not
  // enabled, so that a configuration turned on later is already valid.
  void validate() const;
  friend bool operator==(const HealthCheckConfig&, const HealthCheckConfig&) = default;
};

}  // namespace divert
