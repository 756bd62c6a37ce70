#include "domain_proxy.hpp"

#include "balancer.hpp"
#include "domain_table.hpp"
#include "http_host.hpp"
#include "http_misdirected.hpp"
#include "tls_alert.hpp"
#include "tls_client_hello.hpp"
#include "xdpfwd/unique_fd.hpp"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <span>
#include <unordered_set>

namespace xdpfwd::ingress {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The first bytes are read this much at a time (and the drain after a refusal).
constexpr std::size_t kReadChunk = 4096;
// A pipe's default capacity: what one splice moves at most.
constexpr std::size_t kPipeChunk = 64 * 1024;
// Splices per direction before yielding to the other connections on the io_context.
constexpr int kSpliceRounds = 16;
// After a refusal (TLS alert, 421, 400): how long the client's remaining bytes are read and
// dropped, so that closing does not turn into a reset that could destroy the answer in flight.
constexpr auto kRefusalLinger = 1s;
constexpr int kBacklog = 1024;
constexpr auto kAcceptRetry = 100ms;
constexpr std::uint64_t kDescriptorsPerConnection = 6;
// Descriptors kept for everything else (listeners, control socket, AF_XDP, BPF objects, logs).
constexpr std::uint64_t kReservedDescriptors = 256;

bool tcp_port_allowed(const config::Inspect& inspect, std::uint16_t port) {
  if (inspect.allow.empty()) return true;
  return std::any_of(inspect.allow.begin(), inspect.allow.end(), [&](const config::AllowRule& rule) {
    return rule.protocol == config::Protocol::Tcp &&
           (rule.ports.empty() || std::binary_search(rule.ports.begin(), rule.ports.end(), port));
  });
}

asio::ip::address unmapped(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  return address;
}

bool denied(const std::vector<config::Cidr>& deny, const asio::ip::address& source) {
  const auto address = unmapped(source);
  for (const auto& cidr : deny) {
    if (const auto* v4 = std::get_if<asio::ip::network_v4>(&cidr)) {
      if (address.is_v4() && asio::ip::network_v4(address.to_v4(), v4->prefix_length()).canonical() == *v4) return true;
    } else if (const auto* v6 = std::get_if<asio::ip::network_v6>(&cidr)) {
      if (address.is_v6() && asio::ip::network_v6(address.to_v6(), v6->prefix_length()).canonical() == *v6) return true;
    }
  }
  return false;
}

balance::Address flow_address(const asio::ip::address& address) {
  return balance::to_address(unmapped(address));
}

// The soft descriptor limit, for the connection budget.
std::uint64_t descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1u << 20;
  return limit.rlim_cur;
}

std::string to_text(const asio::ip::address& address, std::uint16_t port) {
  return address.is_v6() ? "[" + address.to_string() + "]:" + std::to_string(port)
                         : address.to_string() + ":" + std::to_string(port);
}

} // namespace

std::vector<std::uint16_t> terminated_ports(const config::Ingress& ingress) {
  std::vector<std::uint16_t> ports;
  if (ingress.services.size() < 2) return ports;
  for (const auto* list : {&ingress.domain_routing.tls_ports, &ingress.domain_routing.http_ports})
    for (const std::uint16_t port : *list)
      if (tcp_port_allowed(ingress.inspect, port)) ports.push_back(port);
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  return ports;
}

std::vector<std::uint8_t> proxy_v2_header(const tcp::endpoint& client, const tcp::endpoint& server) {
  static constexpr std::array<std::uint8_t, 12> kSignature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                               0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  const auto source = unmapped(client.address()), destination = unmapped(server.address());
  const bool v4 = source.is_v4() && destination.is_v4();
  std::vector<std::uint8_t> header(kSignature.begin(), kSignature.end());
  header.push_back(0x21);             // version 2, command PROXY
  header.push_back(v4 ? 0x11 : 0x21); // TCP over IPv4 / IPv6
  const std::uint16_t length = v4 ? 12 : 36;
  header.push_back(static_cast<std::uint8_t>(length >> 8));
  header.push_back(static_cast<std::uint8_t>(length));
  auto put_address = [&](const asio::ip::address& address) {
    if (v4) {
      const auto bytes = address.to_v4().to_bytes();
      header.insert(header.end(), bytes.begin(), bytes.end());
    } else {
      const auto bytes = address.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, address.to_v4()).to_bytes()
                                         : address.to_v6().to_bytes();
      header.insert(header.end(), bytes.begin(), bytes.end());
    }
  };
  put_address(source);
  put_address(destination);
  for (const std::uint16_t port : {client.port(), server.port()}) {
    header.push_back(static_cast<std::uint8_t>(port >> 8));
    header.push_back(static_cast<std::uint8_t>(port));
  }
  return header;
}

// ------------------------------------------------------------------------------------------------

namespace proxy_detail {

// A service as the proxy balances it; kept by name across configure() (so are its counters and,
// where the rule is unchanged, its balancer: least_conn keeps counting the open connections).
struct ServiceState {
  std::string name;
  config::LbRule lb = config::LbRule::Maglev;
  std::unique_ptr<balance::Balancer> balancer;
  std::uint64_t connections = 0; // relayed to one of its replicas
};

// What a connection was accepted under.
struct Routing {
  config::DomainRouting settings;
  domain::DomainTable table;
  std::vector<std::shared_ptr<ServiceState>> services; // in the order of the config
  std::vector<config::Cidr> deny_sources;
  std::uint64_t max_connections = 0; // settings.max_connections within the descriptor budget
};

class Connection;

} // namespace proxy_detail

using proxy_detail::Connection;
using proxy_detail::Routing;
using proxy_detail::ServiceState;

// Outlives the DomainProxy as long as a connection's handler is pending.
struct DomainProxy::Shared {
  std::shared_ptr<Routing> routing;
  std::map<std::string, std::shared_ptr<ServiceState>> services; // by name
  std::unordered_set<Connection*> connections;
  std::map<std::string, std::uint64_t> rejected; // answered with an alert, 421
  std::map<std::string, std::uint64_t> drops;    // every other end without relaying, and relay errors
  std::uint64_t accepted = 0;
  std::uint64_t relayed = 0;
  std::uint64_t completed = 0; // relayed and closed by the two sides
  std::uint64_t bytes_to_replicas = 0;
  std::uint64_t bytes_to_clients = 0;

  void drop(const std::string& reason) { ++drops[reason]; }
};

namespace proxy_detail {

class Connection : public std::enable_shared_from_this<Connection> {
public:
  Connection(asio::io_context& io, std::shared_ptr<DomainProxy::Shared> shared, tcp::socket client, bool tls)
      : io_(io), shared_(std::move(shared)), routing_(shared_->routing), client_(std::move(client)), replica_(io),
        timer_(io), tls_(tls) {
    shared_->connections.insert(this);
  }

  ~Connection() {
    shared_->connections.erase(this);
    if (service_ && replica_ref_) service_->balancer->flow_closed(*replica_ref_);
  }

  void start() {
    error_code ec;
    client_endpoint_ = client_.remote_endpoint(ec);
    if (!ec) server_endpoint_ = client_.local_endpoint(ec);
    if (ec) {
      shared_->drop("client_closed");
      close();
      return;
    }
    client_.set_option(tcp::no_delay(true), ec);
    const std::size_t limit = routing_->settings.max_first_bytes;
    if (tls_) hello_.emplace(limit);
    else head_.emplace(limit);
    chunk_ = std::make_unique<std::array<std::uint8_t, kReadChunk>>();
    phase_ = Phase::FirstBytes;
    arm(Clock::now() + std::chrono::milliseconds(routing_->settings.first_bytes_timeout_ms));
    read_first();
  }

  // Ends at once, both ways, with a reset (the proxy stops).
  void abort() {
    reset(client_);
    reset(replica_);
    close();
  }

private:
  enum class Phase { Idle, FirstBytes, Refusing, Connecting, Replaying, Relaying, Closed };
  struct Direction {
    UniqueFd pipe_read, pipe_write;
    std::size_t pending = 0; // bytes in the pipe
    bool eof = false;        // the sender's FIN was read
    bool done = false;       // ... and passed on
  };

  bool closed() const { return phase_ == Phase::Closed; }

  void arm(Clock::time_point deadline) {
    timer_.expires_at(deadline);
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec && !self->closed()) self->on_timer();
    });
  }

  void on_timer() {
    switch (phase_) {
    case Phase::FirstBytes: shared_->drop("first_bytes_timeout"); close(); return;
    case Phase::Refusing: close(); return;
    case Phase::Connecting: shared_->drop("connect_timeout"); close(); return;
    case Phase::Replaying:
    case Phase::Relaying: {
      const auto idle = std::chrono::milliseconds(routing_->settings.idle_timeout_ms);
      if (Clock::now() - last_activity_ >= idle) {
        shared_->drop("idle_timeout");
        close();
      } else {
        arm(last_activity_ + idle);
      }
      return;
    }
    case Phase::Idle:
    case Phase::Closed: return;
    }
  }

  // ---- the first bytes ----

  void read_first() {
    client_.async_read_some(asio::buffer(*chunk_), [self = shared_from_this()](const error_code& ec, std::size_t n) {
      if (!self->closed()) self->on_first_bytes(ec, n);
    });
  }

  void on_first_bytes(const error_code& ec, std::size_t n) {
    if (ec) {
      shared_->drop(ec == asio::error::eof ? "client_closed" : "client_reset");
      close();
      return;
    }
    const std::span<const std::uint8_t> bytes(chunk_->data(), n);
    const domain::Status status = tls_ ? hello_->feed(bytes) : head_->feed(bytes);
    if (status == domain::Status::NeedMore) {
      read_first();
      return;
    }
    decide(status, tls_ ? hello_->name() : head_->name());
  }

  void decide(domain::Status status, const std::string& name) {
    using domain::Status;
    using domain::TlsAlert;
    std::optional<domain::DomainTable::Match> match;
    switch (status) {
    case Status::Found:
      match = routing_->table.match(name);
      if (!match) return refuse(tls_ ? alert(TlsAlert::UnrecognizedName) : text(domain::kHttpMisdirectedRequest),
                                "unknown_domain", true);
      break;
    case Status::NoName:
    case Status::BadName:
      match = routing_->table.fallback();
      // No SNI at all: nothing was unrecognised, the handshake just cannot go on.
      if (!match) return refuse(tls_ ? alert(status == Status::NoName ? TlsAlert::HandshakeFailure : TlsAlert::UnrecognizedName)
                                     : text(domain::kHttpMisdirectedRequest),
                                status == Status::NoName ? "no_name" : "bad_name", true);
      break;
    case Status::NotProtocol:
      shared_->drop("not_protocol");
      return close();
    case Status::Malformed:
    case Status::TooLong:
      return refuse(tls_ ? alert(TlsAlert::HandshakeFailure) : text(domain::kHttpBadRequest),
                    status == Status::Malformed ? "malformed" : "too_long", false);
    case Status::NeedMore: return;
    }
    connect(match->service);
  }

  static std::vector<std::uint8_t> alert(domain::TlsAlert which) {
    const auto record = domain::tls_fatal_alert(which);
    return {record.begin(), record.end()};
  }
  static std::vector<std::uint8_t> text(std::string_view answer) { return {answer.begin(), answer.end()}; }

  // Answers, stops sending, reads (and drops) what the client still sends for a moment, closes.
  void refuse(std::vector<std::uint8_t> answer, const char* reason, bool rejected) {
    if (rejected) ++shared_->rejected[reason];
    else shared_->drop(reason);
    hello_.reset();
    head_.reset();
    phase_ = Phase::Refusing;
    arm(Clock::now() + kRefusalLinger);
    out_ = std::move(answer);
    asio::async_write(client_, asio::buffer(out_), [self = shared_from_this()](const error_code& ec, std::size_t) {
      if (self->closed()) return;
      if (ec) return self->close();
      error_code ignored;
      self->client_.shutdown(tcp::socket::shutdown_send, ignored);
      self->drain();
    });
  }

  void drain() {
    client_.async_read_some(asio::buffer(*chunk_), [self = shared_from_this()](const error_code& ec, std::size_t) {
      if (self->closed()) return;
      if (ec) return self->close();
      self->drain();
    });
  }

  // ---- the replica ----

  void connect(std::size_t service_index) {
    service_ = routing_->services.at(service_index);
    balance::FlowKey key{};
    key.src = flow_address(client_endpoint_.address());
    key.dst = flow_address(server_endpoint_.address());
    key.src_port = client_endpoint_.port();
    key.dst_port = server_endpoint_.port();
    key.proto = balance::IpProto::Tcp;
    const std::uint64_t hash = balance::hash(key);
    // The client's family first; the proxy terminates, so the other family does as well.
    const balance::Family family = balance::family_of(key);
    auto ref = service_->balancer->pick(family, key, hash);
    if (!ref) ref = service_->balancer->pick(family == balance::Family::V4 ? balance::Family::V6 : balance::Family::V4, key, hash);
    if (!ref || !service_->balancer->address(*ref)) {
      shared_->drop("no_replica");
      return close();
    }
    replica_ref_ = ref;
    service_->balancer->flow_opened(*ref);
    const tcp::endpoint target(*service_->balancer->address(*ref), server_endpoint_.port());
    phase_ = Phase::Connecting;
    arm(Clock::now() + std::chrono::milliseconds(routing_->settings.connect_timeout_ms));
    replica_.async_connect(target, [self = shared_from_this(), target](const error_code& ec) {
      if (self->closed()) return;
      if (ec) {
        spdlog::debug("proxy: connect to {}: {}", to_text(target.address(), target.port()), ec.message());
        self->shared_->drop("connect_failed");
        return self->close();
      }
      self->replay();
    });
  }

  // The PROXY header and every byte read from the client, before anything else.
  void replay() {
    error_code ec;
    replica_.set_option(tcp::no_delay(true), ec);
    ++service_->connections;
    ++shared_->relayed;
    out_.clear();
    if (routing_->settings.proxy_protocol) out_ = proxy_v2_header(client_endpoint_, server_endpoint_);
    const auto buffered = tls_ ? hello_->take_buffered() : head_->take_buffered();
    out_.insert(out_.end(), buffered.begin(), buffered.end());
    hello_.reset();
    head_.reset();
    chunk_.reset();
    phase_ = Phase::Replaying;
    last_activity_ = Clock::now();
    arm(last_activity_ + std::chrono::milliseconds(routing_->settings.idle_timeout_ms));
    asio::async_write(replica_, asio::buffer(out_), [self = shared_from_this(), replayed = buffered.size()](
                                                        const error_code& ec, std::size_t) {
      if (self->closed()) return;
      if (ec) {
        self->shared_->drop("replica_reset");
        return self->abort();
      }
      self->shared_->bytes_to_replicas += replayed;
      self->out_ = {};
      self->relay();
    });
  }

  // ---- the relay ----

  void relay() {
    for (Direction& direction : directions_) {
      int fds[2];
      if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        shared_->drop("no_descriptors");
        return abort();
      }
      direction.pipe_read.reset(fds[0]);
      direction.pipe_write.reset(fds[1]);
    }
    client_.native_non_blocking(true);
    replica_.native_non_blocking(true);
    phase_ = Phase::Relaying;
    pump(0);
    pump(1);
  }

  // Direction 0: client -> replica; 1: replica -> client.
  void pump(int index) {
    if (closed()) return;
    Direction& direction = directions_[index];
    tcp::socket& from = index == 0 ? client_ : replica_;
    tcp::socket& to = index == 0 ? replica_ : client_;
    for (int round = 0; round < kSpliceRounds; ++round) {
      if (direction.pending > 0) {
        const ssize_t moved = ::splice(direction.pipe_read.get(), nullptr, to.native_handle(), nullptr,
                                       direction.pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (moved < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) return wait(index, to, tcp::socket::wait_write);
          return broken(index == 0 ? "replica_reset" : "client_reset");
        }
        direction.pending -= static_cast<std::size_t>(moved);
        (index == 0 ? shared_->bytes_to_replicas : shared_->bytes_to_clients) += static_cast<std::uint64_t>(moved);
        last_activity_ = Clock::now();
        continue;
      }
      if (direction.eof) {
        error_code ignored;
        to.shutdown(tcp::socket::shutdown_send, ignored);
        direction.done = true;
        if (directions_[1 - index].done) {
          ++shared_->completed;
          close();
        }
        return;
      }
      const ssize_t moved = ::splice(from.native_handle(), nullptr, direction.pipe_write.get(), nullptr, kPipeChunk,
                                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (moved == 0) {
        direction.eof = true;
        continue;
      }
      if (moved < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return wait(index, from, tcp::socket::wait_read);
        return broken(index == 0 ? "client_reset" : "replica_reset");
      }
      direction.pending += static_cast<std::size_t>(moved);
      last_activity_ = Clock::now();
    }
    asio::post(io_, [self = shared_from_this(), index] { self->pump(index); });
  }

  void wait(int index, tcp::socket& socket, tcp::socket::wait_type type) {
    socket.async_wait(type, [self = shared_from_this(), index](const error_code& ec) {
      if (ec == asio::error::operation_aborted || self->closed()) return;
      self->pump(index); // other errors show in the splice
    });
  }

  // One side reset (or failed): the other side gets a reset too.
  void broken(const char* reason) {
    shared_->drop(reason);
    abort();
  }

  static void reset(tcp::socket& socket) {
    if (!socket.is_open()) return;
    error_code ignored;
    socket.set_option(tcp::socket::linger(true, 0), ignored);
  }

  void close() {
    phase_ = Phase::Closed;
    error_code ignored;
    timer_.cancel();
    client_.close(ignored);
    replica_.close(ignored);
    for (Direction& direction : directions_) {
      direction.pipe_read.reset();
      direction.pipe_write.reset();
    }
    chunk_.reset();
    out_ = {};
    hello_.reset();
    head_.reset();
  }

  asio::io_context& io_;
  std::shared_ptr<DomainProxy::Shared> shared_;
  std::shared_ptr<Routing> routing_; // the configuration the connection was accepted under
  tcp::socket client_, replica_;
  asio::steady_timer timer_;
  const bool tls_;
  Phase phase_ = Phase::Idle;
  tcp::endpoint client_endpoint_, server_endpoint_;
  std::optional<domain::ClientHelloParser> hello_;
  std::optional<domain::RequestHeadParser> head_;
  std::unique_ptr<std::array<std::uint8_t, kReadChunk>> chunk_; // until the relay starts
  std::vector<std::uint8_t> out_;                               // an answer, or the replay
  std::shared_ptr<ServiceState> service_;
  std::optional<balance::ReplicaRef> replica_ref_;
  Clock::time_point last_activity_;
  std::array<Direction, 2> directions_;
};

} // namespace proxy_detail

// ------------------------------------------------------------------------------------------------

struct DomainProxy::Listener {
  Listener(asio::io_context& io, asio::ip::address address, std::uint16_t port, bool tls)
      : acceptor(io), retry(io), address(std::move(address)), port(port), tls(tls) {}
  tcp::acceptor acceptor;
  asio::steady_timer retry;
  asio::ip::address address;
  std::uint16_t port;
  bool tls;
  bool closed = false;
};

DomainProxy::DomainProxy(asio::io_context& io) : io_(io), shared_(std::make_shared<Shared>()) {}

DomainProxy::~DomainProxy() { stop(); }

void DomainProxy::stop() {
  for (auto& listener : listeners_) {
    listener->closed = true;
    error_code ignored;
    listener->acceptor.close(ignored);
    listener->retry.cancel();
  }
  listeners_.clear();
  // abort() may end the last reference to a connection: iterate over a copy.
  std::vector<std::shared_ptr<Connection>> open;
  for (Connection* connection : shared_->connections) open.push_back(connection->shared_from_this());
  for (auto& connection : open) connection->abort();
  shared_->routing.reset();
}

void DomainProxy::set_replica_health(const std::string& service, const config::IpAddress& replica, bool healthy) {
  const auto found = shared_->services.find(service);
  if (found == shared_->services.end() || !found->second->balancer) return;
  if (const auto ref = found->second->balancer->find(replica)) found->second->balancer->set_healthy(*ref, healthy);
}

void DomainProxy::configure(const config::Ingress& ingress) {
  const std::vector<std::uint16_t> ports = terminated_ports(ingress);
  std::shared_ptr<Routing> routing;
  if (!ports.empty()) {
    routing = std::make_shared<Routing>(Routing{ingress.domain_routing, domain::DomainTable::from_ingress(ingress), {},
                                                ingress.inspect.deny_sources, 0});
    std::map<std::string, std::shared_ptr<ServiceState>> services;
    for (const auto& service : ingress.services) {
      auto found = shared_->services.find(service.name);
      std::shared_ptr<ServiceState> state;
      if (found != shared_->services.end()) state = found->second;
      else state = std::make_shared<ServiceState>(ServiceState{service.name, service.lb, nullptr, 0});
      if (!state->balancer || state->lb != service.lb) {
        state->balancer = balance::Balancer::create(service.lb);
        state->lb = service.lb;
      }
      state->balancer->sync(service.replicas);
      services.emplace(service.name, state);
      routing->services.push_back(state);
    }
    shared_->services = std::move(services);
    const std::uint64_t limit = descriptor_limit();
    const std::uint64_t budget = limit > kReservedDescriptors ? (limit - kReservedDescriptors) / kDescriptorsPerConnection : 1;
    routing->max_connections = std::min<std::uint64_t>(ingress.domain_routing.max_connections, std::max<std::uint64_t>(budget, 1));
    const bool capped_before = shared_->routing && shared_->routing->max_connections == routing->max_connections;
    if (routing->max_connections < ingress.domain_routing.max_connections && !capped_before)
      spdlog::warn("proxy: max_connections {} needs {} descriptors, the limit is {}: at most {} connections",
                   ingress.domain_routing.max_connections, ingress.domain_routing.max_connections * kDescriptorsPerConnection,
                   limit, routing->max_connections);
  } else {
    shared_->services.clear();
  }
  shared_->routing = routing;

  // Listeners: one per service IP and terminated port; kept when still wanted.
  const auto& tls_ports = ingress.domain_routing.tls_ports;
  auto is_tls = [&](std::uint16_t port) { return std::find(tls_ports.begin(), tls_ports.end(), port) != tls_ports.end(); };
  std::vector<std::shared_ptr<Listener>> kept;
  for (auto& listener : listeners_) {
    const bool wanted = std::find(ports.begin(), ports.end(), listener->port) != ports.end() &&
                        std::find(ingress.service_ips.begin(), ingress.service_ips.end(), listener->address) !=
                            ingress.service_ips.end();
    if (wanted) {
      listener->tls = is_tls(listener->port);
      kept.push_back(listener);
    } else {
      listener->closed = true;
      error_code ignored;
      listener->acceptor.close(ignored);
      listener->retry.cancel();
      spdlog::info("proxy: no longer listening on {}", to_text(listener->address, listener->port));
    }
  }
  listeners_ = std::move(kept);
  for (const auto& address : ingress.service_ips)
    for (const std::uint16_t port : ports) {
      const bool present = std::any_of(listeners_.begin(), listeners_.end(), [&](const auto& listener) {
        return listener->address == address && listener->port == port;
      });
      if (!present) listen(address, port, is_tls(port));
    }
}

void DomainProxy::listen(const asio::ip::address& address, std::uint16_t port, bool tls) {
  auto listener = std::make_shared<Listener>(io_, address, port, tls);
  const tcp::endpoint endpoint(address, port);
  error_code ec;
  auto& acceptor = listener->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && address.is_v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
  if (!ec) {
    // The service IPs are eth0's; an IPv6 one may still be tentative (duplicate address detection).
    const int one = 1;
    const int level = address.is_v4() ? SOL_IP : SOL_IPV6;
    const int option = address.is_v4() ? IP_FREEBIND : IPV6_FREEBIND;
    ::setsockopt(acceptor.native_handle(), level, option, &one, sizeof(one));
  }
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(kBacklog, ec);
  if (ec) {
    spdlog::error("proxy: listen on {}: {}", to_text(address, port), ec.message());
    return;
  }
  spdlog::info("proxy: listening on {} ({})", to_text(address, port), tls ? "tls" : "http");
  listeners_.push_back(listener);
  accept(listener);
}

void DomainProxy::accept(const std::shared_ptr<Listener>& listener) {
  listener->acceptor.async_accept([this, listener](const error_code& ec, tcp::socket socket) {
    if (listener->closed) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      const bool out_of_descriptors = ec == asio::error::no_descriptors || ec.value() == ENFILE;
      shared_->drop(out_of_descriptors ? "no_descriptors" : "accept_failed");
      listener->retry.expires_after(kAcceptRetry);
      listener->retry.async_wait([this, listener](const error_code& wait_ec) {
        if (!wait_ec && !listener->closed) accept(listener);
      });
      return;
    }
    ++shared_->accepted;
    const auto& routing = shared_->routing;
    error_code peer_ec;
    const auto peer = socket.remote_endpoint(peer_ec);
    auto refuse = [&](const char* reason) {
      shared_->drop(reason);
      error_code ignored;
      socket.set_option(tcp::socket::linger(true, 0), ignored);
      socket.close(ignored);
    };
    if (!routing || peer_ec) refuse("client_closed");
    else if (shared_->connections.size() >= routing->max_connections) refuse("max_connections");
    else if (denied(routing->deny_sources, peer.address())) refuse("denied_source");
    else std::make_shared<Connection>(io_, shared_, std::move(socket), listener->tls)->start();
    accept(listener);
  });
}

nlohmann::json DomainProxy::status() const {
  nlohmann::json listeners = nlohmann::json::array();
  for (const auto& listener : listeners_)
    listeners.push_back(to_text(listener->address, listener->port) + (listener->tls ? " tls" : " http"));
  nlohmann::json services = nlohmann::json::array();
  if (shared_->routing)
    for (const auto& service : shared_->routing->services)
      services.push_back({{"name", service->name}, {"connections", service->connections}});
  return {{"listeners", listeners},
          {"accepted", shared_->accepted},
          {"active", shared_->connections.size()},
          {"max_connections", shared_->routing ? shared_->routing->max_connections : 0},
          {"relayed", shared_->relayed},
          {"completed", shared_->completed},
          {"bytes_to_replicas", shared_->bytes_to_replicas},
          {"bytes_to_clients", shared_->bytes_to_clients},
          {"rejected", shared_->rejected},
          {"drops", shared_->drops},
          {"services", services}};
}

} // namespace xdpfwd::ingress
