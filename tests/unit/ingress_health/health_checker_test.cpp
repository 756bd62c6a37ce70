// The health checker against real servers: the process moves into a private network namespace
// first (main() below), adds the replica addresses to its lo and runs TCP, HTTP, UDP and DNS
// servers on them, on the io_context the checker uses. Intervals are short (50 ms); no assertion
// depends on timing except generous upper bounds (how long a failing test waits). Servers
// answering from user space share the test's thread, so a stalled thread can make one probe time
// out: replicas expected healthy are checked with fall >= 2 ("never down"), not "no failure";
// TCP connects and ICMP refusals are answered by the kernel and checked exactly.
#include "health_checker.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace xdpfwd::ingress::health {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using config::HealthCheck;
using config::HealthCheckType;
using config::IpAddress;
using namespace std::chrono_literals;

std::string g_skip_reason = "not set up";

IpAddress replica(int n) { return asio::ip::make_address("10.210.0." + std::to_string(10 + n)); }
const IpAddress kReplica6 = asio::ip::make_address("fd00:210::11");
constexpr auto kInterval = 50ms;
constexpr auto kWait = 20 * kInterval + 2s; // only how long a failing test waits

HealthCheck check(HealthCheckType type, std::uint16_t port, std::uint32_t fall = 3, std::uint32_t rise = 2) {
  return {.type = type, .port = port, .interval_ms = 50, .timeout_ms = 30, .fall = fall, .rise = rise};
}

// A TCP server on one address: accepts and closes, answers HTTP with `status`, or (status 0 with
// http) holds every connection open without a word.
class TcpServer {
public:
  TcpServer(asio::io_context& io, IpAddress address, std::uint16_t port = 0, bool http = false, unsigned status = 200)
      : http_(http), status(status), io_(io), address_(address) {
    open(port);
  }
  std::uint16_t port() const { return port_; }
  void open(std::uint16_t port = 0) {
    const tcp::endpoint endpoint{address_, port ? port : port_};
    acceptor_.emplace(io_);
    acceptor_->open(endpoint.protocol());
    acceptor_->set_option(asio::socket_base::reuse_address(true));
    acceptor_->bind(endpoint);
    acceptor_->listen();
    port_ = acceptor_->local_endpoint().port();
    accept();
  }
  void close() {
    acceptor_->close();
    held_.clear();
  }

  int accepted = 0;
  std::vector<std::string> requests;
  bool http_;
  unsigned status;

private:
  struct Session {
    explicit Session(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    asio::streambuf in;
    std::string out;
  };
  void accept() {
    acceptor_->async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec) return;
      ++accepted;
      if (http_) serve(std::make_shared<Session>(std::move(socket)));
      accept();
    });
  }
  void serve(std::shared_ptr<Session> session) {
    if (status == 0) {
      held_.push_back(session);
      return;
    }
    asio::async_read_until(session->socket, session->in, "\r\n\r\n",
                           [this, session](const boost::system::error_code& ec, std::size_t length) {
                             if (ec) return;
                             requests.emplace_back(asio::buffers_begin(session->in.data()),
                                                   asio::buffers_begin(session->in.data()) + length);
                             session->out = "HTTP/1.1 " + std::to_string(status) + " Whatever\r\nContent-Length: 0\r\n\r\n";
                             asio::async_write(session->socket, asio::buffer(session->out),
                                               [session](const boost::system::error_code&, std::size_t) {});
                           });
  }

  asio::io_context& io_;
  IpAddress address_;
  std::uint16_t port_ = 0;
  std::optional<tcp::acceptor> acceptor_;
  std::vector<std::shared_ptr<Session>> held_;
};

// A UDP server on one address: echo, silent, or a DNS responder answering with `rcode`.
class UdpServer {
public:
  enum class Mode { Echo, Silent, Dns };
  UdpServer(asio::io_context& io, IpAddress address, std::uint16_t port, Mode mode, std::uint8_t rcode = 0)
      : mode(mode), rcode(rcode), socket_(io, udp::endpoint{address, port}) {
    receive();
  }
  std::uint16_t port() const { return socket_.local_endpoint().port(); }

  Mode mode;
  std::uint8_t rcode;
  std::vector<std::string> received;
  std::vector<std::string> qnames; // DNS: "name/type" of each query
private:
  void receive() {
    socket_.async_receive_from(asio::buffer(buffer_), from_, [this](const boost::system::error_code& ec, std::size_t n) {
      if (ec) return;
      received.emplace_back(reinterpret_cast<const char*>(buffer_.data()), n);
      if (mode == Mode::Echo) {
        socket_.send_to(asio::buffer(buffer_.data(), n), from_);
      } else if (mode == Mode::Dns && n >= 12) {
        // Decode the question, answer with the header's flags turned into a response.
        std::string name;
        std::size_t at = 12;
        while (at < n && buffer_[at] != 0) {
          const std::size_t length = buffer_[at];
          name.append(reinterpret_cast<const char*>(&buffer_[at + 1]), std::min(length, n - at - 1)).push_back('.');
          at += 1 + length;
        }
        if (name.empty()) name = ".";
        const unsigned type = at + 2 < n ? (buffer_[at + 1] << 8 | buffer_[at + 2]) : 0;
        qnames.push_back(name + "/" + std::to_string(type));
        buffer_[2] |= 0x80;                                         // QR
        buffer_[3] = static_cast<std::uint8_t>(0x80 | rcode);      // RA, rcode
        socket_.send_to(asio::buffer(buffer_.data(), std::min(n, at + 5)), from_);
      }
      receive();
    });
  }
  udp::socket socket_;
  udp::endpoint from_;
  std::array<std::uint8_t, 1500> buffer_{};
};

// A port nothing listens on (on any address).
std::uint16_t closed_port(asio::io_context& io) {
  tcp::acceptor acceptor(io, tcp::endpoint{replica(1), 0});
  return acceptor.local_endpoint().port();
}

class HealthCheckerTest : public ::testing::Test {
protected:
  struct Event {
    std::string service;
    IpAddress replica;
    bool healthy = true;
    ReplicaStatus at; // the replica's state when the callback ran
  };

  void SetUp() override {
    if (!g_skip_reason.empty()) GTEST_SKIP() << g_skip_reason;
  }
  void make_checker(Options options = {}) {
    checker = std::make_unique<HealthChecker>(
        io,
        [this](const std::string& service, const IpAddress& replica, bool healthy) {
          events.push_back({service, replica, healthy, *checker->replica_status(service, replica)});
        },
        options);
  }
  // Runs the io_context until pred() holds; false after `limit`.
  bool run_until(const std::function<bool()>& pred, std::chrono::steady_clock::duration limit = kWait) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      io.run_for(5ms);
      if (io.stopped()) {
        io.restart();
        std::this_thread::sleep_for(1ms);
      }
    }
    return true;
  }
  void run_for(std::chrono::steady_clock::duration time) {
    run_until([] { return false; }, time);
  }
  ReplicaStatus state(const IpAddress& address, const std::string& service = "svc") {
    const auto status = checker->replica_status(service, address);
    if (!status) throw std::runtime_error("no replica " + address.to_string());
    return *status;
  }
  std::uint64_t probes(const IpAddress& address) { return state(address).probes; }
  const Event* find_event(const IpAddress& address, bool healthy) const {
    for (const auto& event : events)
      if (event.replica == address && event.healthy == healthy) return &event;
    return nullptr;
  }
  std::size_t events_of(const IpAddress& address) const {
    return std::count_if(events.begin(), events.end(), [&](const Event& e) { return e.replica == address; });
  }

  asio::io_context io;
  std::vector<Event> events;
  std::unique_ptr<HealthChecker> checker; // after io: destroyed first
};

TEST_F(HealthCheckerTest, TcpHealthyReplicasStayHealthy) {
  TcpServer one(io, replica(1));
  TcpServer two(io, replica(2), one.port());
  make_checker();
  checker->set_targets("svc", check(HealthCheckType::Tcp, one.port()), {replica(1), replica(2)});
  ASSERT_TRUE(run_until([&] { return probes(replica(1)) >= 8 && probes(replica(2)) >= 8; }));
  EXPECT_TRUE(events.empty());
  for (int n : {1, 2}) {
    const auto s = state(replica(n));
    EXPECT_TRUE(s.healthy);
    EXPECT_TRUE(s.checked);
    EXPECT_EQ(s.failures, 0u);
    EXPECT_EQ(s.consecutive_successes, s.probes);
    EXPECT_TRUE(s.last_latency_ms.has_value());
  }
  EXPECT_GE(one.accepted, 8);
  const auto counters = *checker->counters("svc");
  EXPECT_EQ(counters.failures, 0u);
  EXPECT_EQ(counters.transitions, 0u);
  EXPECT_EQ(counters.all_down_events, 0u);
  EXPECT_EQ(*checker->all_down("svc"), false);
}

TEST_F(HealthCheckerTest, DownAfterExactlyFallFailuresUpAfterRiseSuccesses) {
  TcpServer one(io, replica(1));
  TcpServer two(io, replica(2), one.port());
  make_checker();
  checker->set_targets("svc", check(HealthCheckType::Tcp, one.port(), /*fall=*/3, /*rise=*/2), {replica(1), replica(2)});
  ASSERT_TRUE(run_until([&] { return state(replica(1)).consecutive_successes >= 2; }));

  one.close();
  const auto stopped = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until([&] { return find_event(replica(1), false) != nullptr; }));
  EXPECT_LE(std::chrono::steady_clock::now() - stopped, 20 * kInterval);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].service, "svc");
  EXPECT_EQ(events[0].at.consecutive_failures, 3u); // exactly fall: not one probe earlier
  EXPECT_EQ(events[0].at.failures, 3u);             // and no failure before the server stopped
  EXPECT_FALSE(events[0].at.healthy);
  EXPECT_NE(events[0].at.last_error.find("refused"), std::string::npos) << events[0].at.last_error;

  // Stays down, still probed.
  const auto probes_down = probes(replica(1));
  ASSERT_TRUE(run_until([&] { return probes(replica(1)) >= probes_down + 3; }));
  EXPECT_EQ(events.size(), 1u);

  one.open();
  ASSERT_TRUE(run_until([&] { return find_event(replica(1), true) != nullptr; }));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].at.consecutive_successes, 2u); // exactly rise
  EXPECT_TRUE(events[1].at.healthy);
  EXPECT_EQ(events_of(replica(2)), 0u);
  EXPECT_EQ(checker->counters("svc")->transitions, 2u);
  EXPECT_EQ(checker->counters("svc")->all_down_events, 0u);
}

TEST_F(HealthCheckerTest, HttpExpectedStatus) {
  TcpServer ok(io, replica(1), 0, /*http=*/true, 200);
  TcpServer unavailable(io, replica(2), ok.port(), true, 503);
  make_checker();
  auto http = check(HealthCheckType::Http, ok.port(), /*fall=*/2, /*rise=*/1);
  http.http_path = "/healthz";
  checker->set_targets("svc", http, {replica(1), replica(2)});
  ASSERT_TRUE(run_until([&] { return find_event(replica(2), false) != nullptr && probes(replica(1)) >= 5; }));
  EXPECT_EQ(events.size(), 1u); // replica 1 never down
  EXPECT_TRUE(run_until([&] { return state(replica(2)).last_error == "status 503, expected 200"; }))
      << state(replica(2)).last_error;
  ASSERT_FALSE(ok.requests.empty());
  EXPECT_EQ(ok.requests[0], "GET /healthz HTTP/1.1\r\nHost: 10.210.0.11:" + std::to_string(ok.port()) +
                                "\r\nConnection: close\r\nUser-Agent: xdpfwd-health\r\n\r\n");

  unavailable.status = 200;
  ASSERT_TRUE(run_until([&] { return find_event(replica(2), true) != nullptr; }));
  EXPECT_EQ(events.size(), 2u);
}

TEST_F(HealthCheckerTest, HttpExpectingAnotherStatus) {
  TcpServer teapot(io, replica(1), 0, true, 418);
  make_checker();
  auto http = check(HealthCheckType::Http, teapot.port(), 2, 1);
  http.http_expect_status = 418;
  checker->set_targets("svc", http, {replica(1)});
  ASSERT_TRUE(run_until([&] { return probes(replica(1)) >= 5; }));
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(state(replica(1)).last_error, "");
}

TEST_F(HealthCheckerTest, HttpWithoutAnswerTimesOut) {
  TcpServer silent(io, replica(1), 0, true, /*status=*/0);
  make_checker();
  checker->set_targets("svc", check(HealthCheckType::Http, silent.port(), 1, 1), {replica(1)});
  ASSERT_TRUE(run_until([&] { return find_event(replica(1), false) != nullptr; }));
  EXPECT_EQ(events[0].at.last_error, "timeout after 30 ms (status line)");
  EXPECT_GE(silent.accepted, 1);
}

TEST_F(HealthCheckerTest, UdpEchoHealthyNoListenerRefused) {
  UdpServer echo(io, replica(1), 0, UdpServer::Mode::Echo);
  make_checker();
  checker->set_targets("svc", check(HealthCheckType::Udp, echo.port(), 2, 1), {replica(1), replica(2)});
  ASSERT_TRUE(run_until([&] { return find_event(replica(2), false) != nullptr && probes(replica(1)) >= 5; }));
  EXPECT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at.consecutive_failures, 2u);
  EXPECT_EQ(state(replica(2)).last_error, "connection refused (ICMP port unreachable)");
  EXPECT_TRUE(state(replica(1)).healthy);
  ASSERT_FALSE(echo.received.empty());
  EXPECT_EQ(echo.received[0], "xdpfwd-health");
}

TEST_F(HealthCheckerTest, UdpWithoutAnswerTimesOut) {
  UdpServer silent(io, replica(1), 0, UdpServer::Mode::Silent);
  make_checker();
  checker->set_targets("svc", check(HealthCheckType::Udp, silent.port(), 1, 1), {replica(1)});
  ASSERT_TRUE(run_until([&] { return find_event(replica(1), false) != nullptr; }));
  EXPECT_EQ(events[0].at.last_error, "timeout after 30 ms (answer)");
  EXPECT_FALSE(silent.received.empty());
}

TEST_F(HealthCheckerTest, DnsAnsweredIsHealthyServfailIsNot) {
  UdpServer noerror(io, replica(1), 0, UdpServer::Mode::Dns, 0);
  UdpServer servfail(io, replica(2), noerror.port(), UdpServer::Mode::Dns, 2);
  UdpServer refused(io, replica(3), noerror.port(), UdpServer::Mode::Dns, 5);
  make_checker();
  checker->set_targets("svc", check(HealthCheckType::Dns, noerror.port(), 2, 1), {replica(1), replica(2), replica(3)});
  ASSERT_TRUE(run_until([&] { return find_event(replica(2), false) != nullptr && probes(replica(1)) >= 5 && probes(replica(3)) >= 5; }));
  EXPECT_EQ(events.size(), 1u); // replicas 1 and 3 never down
  EXPECT_TRUE(run_until([&] { return state(replica(2)).last_error == "dns: rcode SERVFAIL"; }))
      << state(replica(2)).last_error;
  ASSERT_FALSE(noerror.qnames.empty());
  EXPECT_EQ(noerror.qnames[0], "./2"); // ". NS" by default

  servfail.rcode = 0;
  ASSERT_TRUE(run_until([&] { return find_event(replica(2), true) != nullptr; }));
}

TEST_F(HealthCheckerTest, DnsQueryNameIsConfigurable) {
  UdpServer dns(io, replica(1), 0, UdpServer::Mode::Dns, 3); // NXDOMAIN: still an answer
  make_checker({.dns_query_name = "health.example.test", .dns_query_type = 1});
  checker->set_targets("svc", check(HealthCheckType::Dns, dns.port(), 2, 1), {replica(1)});
  ASSERT_TRUE(run_until([&] { return probes(replica(1)) >= 3; }));
  EXPECT_TRUE(events.empty()) << state(replica(1)).last_error;
  ASSERT_FALSE(dns.qnames.empty());
  EXPECT_EQ(dns.qnames[0], "health.example.test./1");
}

TEST_F(HealthCheckerTest, Ipv6Replica) {
  TcpServer server(io, kReplica6, 0, true, 200);
  make_checker();
  checker->set_targets("svc", check(HealthCheckType::Http, server.port(), 2, 1), {kReplica6});
  ASSERT_TRUE(run_until([&] { return probes(kReplica6) >= 3; }));
  EXPECT_TRUE(events.empty()) << state(kReplica6).last_error;
  ASSERT_FALSE(server.requests.empty());
  EXPECT_NE(server.requests[0].find("\r\nHost: [fd00:210::11]:" + std::to_string(server.port()) + "\r\n"),
            std::string::npos);
}

TEST_F(HealthCheckerTest, AllDownReportedAndCountedOnce) {
  TcpServer server(io, replica(1));
  const auto port = server.port();
  server.close();
  make_checker();
  checker->set_targets("svc", check(HealthCheckType::Tcp, port, 1, 1), {replica(1), replica(2)});
  ASSERT_TRUE(run_until([&] { return *checker->all_down("svc"); }));
  EXPECT_EQ(checker->counters("svc")->all_down_events, 1u);
  // Stays down, counted once.
  const auto probes_then = checker->counters("svc")->probes;
  ASSERT_TRUE(run_until([&] { return checker->counters("svc")->probes >= probes_then + 6; }));
  EXPECT_EQ(checker->counters("svc")->all_down_events, 1u);
  const auto json = checker->status();
  EXPECT_EQ(json["services"][0]["all_down"], true);
  EXPECT_EQ(json["services"][0]["all_down_events"], 1);
  EXPECT_EQ(json["services"][0]["replicas"][0]["healthy"], false);

  server.open(port);
  ASSERT_TRUE(run_until([&] { return !*checker->all_down("svc"); }));
  EXPECT_EQ(checker->counters("svc")->all_down_events, 1u);
  server.close();
  ASSERT_TRUE(run_until([&] { return *checker->all_down("svc"); }));
  EXPECT_EQ(checker->counters("svc")->all_down_events, 2u);
}

TEST_F(HealthCheckerTest, ReconfigureKeepsKeptReplicasDropsRemoved) {
  TcpServer two(io, replica(2));
  const auto port = two.port();
  TcpServer three(io, replica(3), port);
  TcpServer four(io, replica(4), port);
  make_checker();
  const auto tcp = check(HealthCheckType::Tcp, port, 2, 2);
  checker->set_targets("svc", tcp, {replica(1), replica(2), replica(3)});
  ASSERT_TRUE(run_until([&] { return find_event(replica(1), false) != nullptr && probes(replica(3)) >= 3; }));
  const auto one_before = state(replica(1));
  const auto three_before = state(replica(3));

  // Same check: 1 and 3 stay as they are, 2 leaves, 4 joins healthy.
  checker->set_targets("svc", tcp, {replica(1), replica(3), replica(4)});
  EXPECT_FALSE(checker->replica_status("svc", replica(2)).has_value());
  EXPECT_FALSE(state(replica(1)).healthy);
  EXPECT_EQ(state(replica(1)).probes, one_before.probes);
  EXPECT_EQ(state(replica(3)).probes, three_before.probes);
  EXPECT_EQ(state(replica(3)).consecutive_successes, three_before.consecutive_successes);
  EXPECT_TRUE(state(replica(4)).healthy);
  EXPECT_EQ(state(replica(4)).probes, 0u);
  const auto two_accepted = two.accepted;
  ASSERT_TRUE(run_until([&] { return probes(replica(1)) >= one_before.probes + 3 && probes(replica(4)) >= 3; }));
  EXPECT_EQ(events.size(), 1u);
  EXPECT_FALSE(state(replica(1)).healthy);
  EXPECT_LE(two.accepted, two_accepted + 1); // at most a probe that was under way
  const auto two_after = two.accepted;
  run_for(4 * kInterval);
  EXPECT_EQ(two.accepted, two_after);

  // A changed check: states stay, consecutive counts restart.
  auto slower = tcp;
  slower.interval_ms = 60;
  checker->set_targets("svc", slower, {replica(1), replica(3), replica(4)});
  EXPECT_FALSE(state(replica(1)).healthy);
  EXPECT_EQ(state(replica(1)).consecutive_failures, 0u);
  EXPECT_EQ(state(replica(3)).consecutive_successes, 0u);
  ASSERT_TRUE(run_until([&] { return state(replica(1)).consecutive_failures >= 2 && state(replica(3)).consecutive_successes >= 2; }));
  EXPECT_EQ(events.size(), 1u);

  // No check any more: the down replica comes back at once, probes stop.
  checker->set_targets("svc", std::nullopt, {replica(1), replica(3), replica(4)});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].replica, replica(1));
  EXPECT_TRUE(events[1].healthy);
  EXPECT_FALSE(state(replica(1)).checked);
  const auto frozen = state(replica(1)).probes;
  run_for(4 * kInterval);
  EXPECT_EQ(state(replica(1)).probes, frozen);
  EXPECT_TRUE(checker->status()["services"][0]["check"].is_null());
}

TEST_F(HealthCheckerTest, WithoutHealthCheckAlwaysHealthy) {
  make_checker();
  checker->set_targets("svc", std::nullopt, {replica(1), replica(2)});
  run_for(6 * kInterval);
  EXPECT_TRUE(events.empty());
  EXPECT_TRUE(state(replica(1)).healthy);
  EXPECT_FALSE(state(replica(1)).checked);
  EXPECT_EQ(checker->counters("svc")->probes, 0u);
}

TEST_F(HealthCheckerTest, ConfigureFromIngress) {
  TcpServer server(io, replica(1));
  make_checker();
  config::Ingress ingress;
  config::Service a;
  a.name = "a";
  a.replicas = {config::Replica{replica(1), 1}};
  a.health_check = check(HealthCheckType::Tcp, server.port());
  config::Service b;
  b.name = "b";
  b.replicas = {config::Replica{replica(2), 1}, config::Replica{replica(3), 1}};
  ingress.services = {a, b};
  checker->configure(ingress);
  ASSERT_TRUE(run_until([&] { return state(replica(1), "a").probes >= 2; }));
  EXPECT_EQ(checker->health().size(), 3u);
  ingress.services.erase(ingress.services.begin());
  checker->configure(ingress);
  EXPECT_FALSE(checker->counters("a").has_value());
  EXPECT_EQ(checker->health().size(), 2u);
  EXPECT_EQ(checker->status()["services"].size(), 1u);
}

TEST_F(HealthCheckerTest, FirstProbesAreSpreadOverTheInterval) {
  make_checker();
  const auto port = closed_port(io);
  auto slow = check(HealthCheckType::Tcp, port, 1000, 1);
  slow.interval_ms = 1000;
  std::vector<IpAddress> replicas;
  for (int n = 1; n <= 8; ++n) replicas.push_back(replica(n));
  checker->set_targets("svc", slow, replicas);
  const auto probed = [&] {
    return std::count_if(replicas.begin(), replicas.end(), [&](const IpAddress& r) { return probes(r) > 0; });
  };
  run_for(150ms);
  EXPECT_LT(probed(), 8); // all 8 in the first 15% of the interval: p = 0.15^8
  ASSERT_TRUE(run_until([&] { return probed() == 8; }, 1500ms));
}

// Destruction and removal while probes are under way: no callback, nothing touched afterwards
// (run under ASan: -fsanitize=address,undefined).
TEST_F(HealthCheckerTest, DestroyedMidProbe) {
  TcpServer http_silent(io, replica(1), 0, true, 0);
  UdpServer udp_silent(io, replica(2), 0, UdpServer::Mode::Silent);
  make_checker();
  auto http = check(HealthCheckType::Http, http_silent.port(), 1, 1);
  http.timeout_ms = 5000; // in flight from the jittered start (< interval) until the test ends
  http.interval_ms = 1000;
  auto udp = check(HealthCheckType::Udp, udp_silent.port(), 1, 1);
  udp.timeout_ms = 5000; // in flight from the jittered start (< interval) until the test ends
  udp.interval_ms = 1000;
  checker->set_targets("http", http, {replica(1)});
  checker->set_targets("udp", udp, {replica(2)});
  ASSERT_TRUE(run_until([&] { return http_silent.accepted >= 1 && !udp_silent.received.empty(); }, 5s));
  checker.reset();
  run_for(100ms);
  EXPECT_TRUE(events.empty());
}

TEST_F(HealthCheckerTest, RemovedMidProbe) {
  TcpServer http_silent(io, replica(1), 0, true, 0);
  make_checker();
  auto http = check(HealthCheckType::Http, http_silent.port(), 1, 1);
  http.timeout_ms = 5000; // in flight from the jittered start (< interval) until the test ends
  http.interval_ms = 1000;
  checker->set_targets("svc", http, {replica(1)});
  checker->set_targets("other", http, {replica(1)});
  ASSERT_TRUE(run_until([&] { return http_silent.accepted >= 2; }, 5s));
  checker->set_targets("svc", http, {});
  checker->remove_service("other");
  run_for(100ms);
  EXPECT_TRUE(events.empty());
  EXPECT_TRUE(checker->health().empty());
}

TEST_F(HealthCheckerTest, DestroyedWithItsIoContextNeverRunAgain) {
  auto local_io = std::make_unique<asio::io_context>();
  TcpServer http_silent(*local_io, replica(1), 0, true, 0);
  int calls = 0;
  auto local = std::make_unique<HealthChecker>(*local_io, [&](const std::string&, const IpAddress&, bool) { ++calls; });
  auto http = check(HealthCheckType::Http, http_silent.port(), 1, 1);
  http.timeout_ms = 5000; // in flight from the jittered start (< interval) until the test ends
  http.interval_ms = 1000;
  local->set_targets("svc", http, {replica(1)});
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (http_silent.accepted == 0 && std::chrono::steady_clock::now() < deadline) local_io->run_for(5ms);
  ASSERT_EQ(http_silent.accepted, 1);
  local.reset();
  http_silent.close();
  local_io.reset(); // destroys the queued handlers without running them
  EXPECT_EQ(calls, 0);
}

// Moves the process into a private network namespace with the replica addresses on lo.
std::string enter_private_netns() {
  const auto inode = [] {
    struct stat info {};
    return ::stat("/proc/thread-self/ns/net", &info) == 0 ? info.st_ino : 0;
  };
  const auto start = inode();
  if (::unshare(CLONE_NEWNET) != 0) return std::string("unshare(CLONE_NEWNET) failed (needs root): ") + std::strerror(errno);
  if (inode() == start || start == 0) {
    std::fprintf(stderr, "still in the starting network namespace: refusing to touch it\n");
    std::exit(1);
  }
  std::string commands = "ip link set lo up && ip addr add fd00:210::11/128 dev lo";
  for (int n = 1; n <= 8; ++n) commands += " && ip addr add " + replica(n).to_string() + "/32 dev lo";
  if (std::system(commands.c_str()) != 0) return "setting up lo failed: " + commands;
  return {};
}

} // namespace
} // namespace xdpfwd::ingress::health

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Before any thread exists: every thread of the test then lives in the private namespace.
  if (!::testing::GTEST_FLAG(list_tests))
    xdpfwd::ingress::health::g_skip_reason = xdpfwd::ingress::health::enter_private_netns();
  spdlog::set_level(spdlog::level::warn);
  return RUN_ALL_TESTS();
}
