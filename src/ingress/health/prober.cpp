#include "prober.hpp"

#include "probe_codec.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>

namespace xdpfwd::ingress::health {

namespace asio = boost::asio;
using boost::system::error_code;
using Type = config::HealthCheckType;

namespace {

const char* phase_name(int phase) {
  static constexpr const char* kNames[] = {"connect", "sending", "status line", "answer"};
  return kNames[phase];
}

} // namespace

Prober::Prober(asio::io_context& io, ProbeSettings settings, asio::ip::address replica, Report report)
    : io_(io), settings_(std::move(settings)), replica_(replica), report_(std::move(report)),
      interval_timer_(io), timeout_timer_(io), random_(std::random_device{}()) {
  if (settings_.check.type == Type::Http)
    request_ = make_http_request(settings_.check.http_path, replica_, settings_.check.port);
}

void Prober::start(Clock::duration first_delay) {
  if (stopped_) return;
  schedule(Clock::now() + first_delay);
}

void Prober::stop() {
  if (stopped_) return;
  stopped_ = true;
  in_flight_ = false;
  interval_timer_.cancel();
  timeout_timer_.cancel();
  close_sockets(); // pending operations complete with operation_aborted and are ignored
}

void Prober::schedule(Clock::time_point at) {
  interval_timer_.expires_at(at);
  interval_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->stopped_) return;
    self->begin();
  });
}

void Prober::begin() {
  ++attempt_;
  in_flight_ = true;
  started_ = Clock::now();
  phase_ = Phase::Connect;
  const auto attempt = attempt_;
  timeout_timer_.expires_after(std::chrono::milliseconds(settings_.check.timeout_ms));
  timeout_timer_.async_wait([self = shared_from_this(), attempt](const error_code& ec) {
    if (ec || !self->current(attempt)) return;
    self->finish(false, "timeout after " + std::to_string(self->settings_.check.timeout_ms) + " ms (" +
                            phase_name(static_cast<int>(self->phase_)) + ")");
  });

  switch (settings_.check.type) {
  case Type::Tcp:
  case Type::Http: {
    // A fresh socket per probe; async_connect opens it in the calling thread's network namespace
    // with an ephemeral source port.
    if (!tcp_) tcp_.emplace(io_); // closed since the last probe; async_connect opens it again
    tcp_->async_connect({replica_, settings_.check.port}, [self = shared_from_this(), attempt](const error_code& ec) {
      if (!self->current(attempt)) return;
      if (ec) return self->finish(false, "connect: " + ec.message());
      self->on_connected();
    });
    break;
  }
  case Type::Udp:
  case Type::Dns: start_udp(); break;
  }
}

void Prober::on_connected() {
  if (settings_.check.type == Type::Tcp) return finish(true, {});
  phase_ = Phase::Send;
  head_.clear();
  asio::async_write(*tcp_, asio::buffer(request_),
                    [self = shared_from_this(), attempt = attempt_](const error_code& ec, std::size_t) {
                      if (!self->current(attempt)) return;
                      if (ec) return self->finish(false, "send request: " + ec.message());
                      self->phase_ = Phase::Status;
                      self->read_status();
                    });
}

void Prober::read_status() {
  const std::size_t room = std::min(buffer_.size(), kMaxHttpHead - head_.size());
  tcp_->async_read_some(asio::buffer(buffer_.data(), room),
                        [self = shared_from_this(), attempt = attempt_](const error_code& ec, std::size_t length) {
                          if (!self->current(attempt)) return;
                          self->head_.append(reinterpret_cast<const char*>(self->buffer_.data()), length);
                          const HttpHead head = parse_http_status(self->head_);
                          const auto expected = self->settings_.check.http_expect_status;
                          if (head.verdict == HttpHead::Verdict::Status) {
                            if (head.status == expected) return self->finish(true, {});
                            return self->finish(false, "status " + std::to_string(head.status) + ", expected " +
                                                           std::to_string(expected));
                          }
                          if (head.verdict == HttpHead::Verdict::Malformed)
                            return self->finish(false, "answer is not an HTTP/1.x status line");
                          if (ec == asio::error::eof) return self->finish(false, "connection closed before the status line");
                          if (ec) return self->finish(false, "read: " + ec.message());
                          if (self->head_.size() >= kMaxHttpHead)
                            return self->finish(false, "no status line in the first " + std::to_string(kMaxHttpHead) + " bytes");
                          self->read_status();
                        });
}

void Prober::start_udp() {
  const asio::ip::udp::endpoint to{replica_, settings_.check.port};
  if (!udp_) udp_.emplace(io_);
  error_code ec;
  udp_->open(to.protocol(), ec);
  // Connected: only the replica's answers reach the socket, and an ICMP port unreachable comes
  // back as ECONNREFUSED on the receive.
  if (!ec) udp_->connect(to, ec);
  if (ec) return finish(false, "udp socket: " + ec.message());

  asio::const_buffer payload = asio::buffer(kUdpProbePayload);
  if (settings_.check.type == Type::Dns) {
    const auto id = static_cast<std::uint16_t>(random_());
    query_ = make_dns_query(id, settings_.dns_query_name, settings_.dns_query_type);
    if (query_.empty()) return finish(false, "cannot encode the DNS name \"" + settings_.dns_query_name + "\"");
    payload = asio::buffer(query_);
  }
  phase_ = Phase::Send;
  udp_->async_send(payload, [self = shared_from_this(), attempt = attempt_](const error_code& ec, std::size_t) {
    if (!self->current(attempt)) return;
    if (ec) return self->finish(false, "send: " + ec.message());
    self->phase_ = Phase::Answer;
    self->udp_->async_receive(asio::buffer(self->buffer_),
                              [self, attempt](const error_code& ec, std::size_t length) {
                                if (!self->current(attempt)) return;
                                if (ec == asio::error::connection_refused)
                                  return self->finish(false, "connection refused (ICMP port unreachable)");
                                if (ec) return self->finish(false, "receive: " + ec.message());
                                self->on_datagram(length);
                              });
  });
}

void Prober::on_datagram(std::size_t length) {
  if (settings_.check.type == Type::Udp) return finish(true, {});
  if (auto error = check_dns_answer(query_, std::span(buffer_.data(), length))) return finish(false, "dns: " + *error);
  finish(true, {});
}

void Prober::close_sockets() {
  error_code ignored;
  if (tcp_) tcp_->close(ignored);
  if (udp_) udp_->close(ignored);
  // The socket objects stay: a composed operation of this attempt may still refer to them.
}

void Prober::finish(bool ok, std::string error) {
  in_flight_ = false;
  timeout_timer_.cancel();
  close_sockets();
  const auto now = Clock::now();
  const ProbeResult result{.ok = ok, .error = std::move(error), .latency = now - started_};
  // The report may stop this prober (its replica left); the caller's handler keeps it alive.
  report_(result);
  if (stopped_) return;
  // Fixed rate from the start of this probe; never overlapping (timeout < interval is validated,
  // but a stalled io_context must not make probes pile up either).
  schedule(std::max(started_ + std::chrono::milliseconds(settings_.check.interval_ms), now));
}

} // namespace xdpfwd::ingress::health
