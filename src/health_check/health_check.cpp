// HealthCheckConfig::validate (include/divert/health_check.hpp).
#include "divert/health_check.hpp"

#include <string>

#include "divert/error.hpp"

namespace divert {

void HealthCheckConfig::validate() const {
  if (interval.count() <= 0)
    throw config_error("health_check.interval", std::to_string(interval.count()) + "ms",
                       "must be positive");
  if (timeout.count() <= 0)
    throw config_error("health_check.timeout", std::to_string(timeout.count()) + "ms",
                       "must be positive");
  if (rise < 1) throw config_error("health_check.rise", std::to_string(rise), "must be at least 1");
  if (fall < 1) throw config_error("health_check.fall", std::to_string(fall), "must be at least 1");
}

}  // namespace divert
