#include "relay/splice_relay.hpp"

#include <memory>

#include "divert/relay.hpp"

namespace divert::detail {

#if DIVERT_RELAY_SPLICE

bool splice_available() noexcept {
  return true;
}

SpliceRelay::SpliceRelay(asio::ip::tcp::socket& a, asio::ip::tcp::socket& b,
                         const RelayOptions& options, std::unique_ptr<RelayCompletion> done)
    : RelaySession(a.get_executor(), options, RelayPath::splice),
      a_(a),
      b_(b),
      up_(*this, RelayDir::upload, a, b),
      down_(*this, RelayDir::download, b, a),
      done_(std::move(done)) {}

// Dispatched: started inline when the caller already runs on the sockets'
// executor (no trip through the scheduler per relay). A failure to start is
// posted, and Asio posts the receives' completions.
void SpliceRelay::start() {
  asio::dispatch(
      a_.get_executor(), [self = std::static_pointer_cast<SpliceRelay>(shared_from_this())] {
        error_code ec;
        for (auto* s : {&self->a_, &self->b_}) {  // Asio caches the mode: no ioctl when set
          if (!ec && !s->native_non_blocking()) s->native_non_blocking(true, ec);
        }
        if (ec) {
          asio::post(self->a_.get_executor(), [self, ec] {
            self->fail(RelayDir::upload, ec);
            self->up_.start();  // both end at once: the relay stopped
            self->down_.start();
          });
          return;
        }
        self->start_idle_timer();
        self->up_.start();
        self->down_.start();
      });
}

void SpliceRelay::close_streams() noexcept {
  error_code ec;
  a_.close(ec);
  b_.close(ec);
}

void SpliceRelay::finished() {
  if (!finish()) return;
  close_streams();
  done_->complete(result());
}

std::shared_ptr<RelaySession> make_splice_relay(asio::ip::tcp::socket& a, asio::ip::tcp::socket& b,
                                                const RelayOptions& options,
                                                std::unique_ptr<RelayCompletion> done) {
  return std::make_shared<SpliceRelay>(a, b, options, std::move(done));
}

void start_splice_relay(const std::shared_ptr<RelaySession>& relay) {
  static_cast<SpliceRelay&>(*relay).start();
}

#else  // no splice(2): relay() never takes this path (splice_available() is false)

bool splice_available() noexcept {
  return false;
}

std::shared_ptr<RelaySession> make_splice_relay(asio::ip::tcp::socket&, asio::ip::tcp::socket&,
                                                const RelayOptions&,
                                                std::unique_ptr<RelayCompletion> done) {
  RelayResult r;
  r.error = make_error_code(errc::config_conflict);
  done->complete(r);
  return nullptr;
}

void start_splice_relay(const std::shared_ptr<RelaySession>&) {}

#endif

}  // namespace divert::detail
