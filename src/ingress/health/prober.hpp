// One replica's probe loop: every interval, one probe of the service's check type, bounded by the
// timeout, its result handed to a Report. Internal to the health checker.
//
// Lifetime: a Prober lives in a shared_ptr that every pending handler holds; stop() cancels its
// timers and closes its socket, after which no handler touches anything but the Prober itself and
// the Report is never called again. So the checker that owns the Report may go away right after
// stop() while handlers are still queued on the io_context.
#pragma once

#include "xdpfwd/config.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace xdpfwd::ingress::health {

struct ProbeResult {
  bool ok = false;
  std::string error; // why not ok ("connect: Connection refused", "timeout after 30 ms (connect)")
  std::chrono::steady_clock::duration latency{};
};

struct ProbeSettings {
  config::HealthCheck check;
  std::string dns_query_name = ".";
  std::uint16_t dns_query_type = 2; // NS
};

class Prober : public std::enable_shared_from_this<Prober> {
public:
  using Clock = std::chrono::steady_clock;
  using Report = std::function<void(const ProbeResult&)>;

  Prober(boost::asio::io_context& io, ProbeSettings settings, boost::asio::ip::address replica, Report report);
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // The first probe after first_delay, then one every interval (never two at once).
  void start(Clock::duration first_delay);
  // Idempotent. No Report call after it.
  void stop();

private:
  enum class Phase { Connect, Send, Status, Answer };

  void schedule(Clock::time_point at);
  void begin();
  void finish(bool ok, std::string error);
  bool current(std::uint64_t attempt) const { return !stopped_ && in_flight_ && attempt == attempt_; }
  void close_sockets();

  void on_connected();
  void read_status();
  void start_udp();
  void on_datagram(std::size_t length);

  boost::asio::io_context& io_;
  ProbeSettings settings_;
  boost::asio::ip::address replica_;
  Report report_;

  boost::asio::steady_timer interval_timer_;
  boost::asio::steady_timer timeout_timer_;
  std::optional<boost::asio::ip::tcp::socket> tcp_;
  std::optional<boost::asio::ip::udp::socket> udp_;

  bool stopped_ = false;
  bool in_flight_ = false;
  std::uint64_t attempt_ = 0; // completions of an earlier attempt are ignored
  Phase phase_ = Phase::Connect;
  Clock::time_point started_{};
  std::string request_;              // http
  std::string head_;                 // http: the answer's first bytes
  std::vector<std::uint8_t> query_;  // dns
  std::array<std::uint8_t, 1500> buffer_{};
  std::minstd_rand random_;
};

} // namespace xdpfwd::ingress::health
