// The terminating proxy of multi-service ingresses (src/ingress/app/domain_proxy.cpp) with real
// sockets: each test unshares a private network namespace (needs root) and uses its loopback:
// the "service IP" is 127.0.0.1, the replicas listen on 127.0.0.2 and 127.0.0.3 on the same
// ports. The proxy runs on an io_context of its own thread; the clients and replicas are plain
// blocking sockets with timeouts on this one.
#include "domain_proxy.hpp"
#include "http_misdirected.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace config = xdpfwd::config;
using xdpfwd::ingress::DomainProxy;
using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

constexpr std::uint16_t kHttpPort = 18080;
constexpr std::uint16_t kTlsPort = 18443;

ino_t netns_inode() {
  struct stat st {};
  return ::stat("/proc/self/ns/net", &st) == 0 ? st.st_ino : 0;
}

sockaddr_in v4(const char* address, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, address, &sa.sin_addr);
  return sa;
}

void set_timeouts(int fd) {
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
}

int connect_to(const char* address, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in sa = v4(address, port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  set_timeouts(fd);
  return fd;
}

bool send_all(int fd, const void* data, std::size_t length) {
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  while (length > 0) {
    const ssize_t sent = ::send(fd, bytes, length, MSG_NOSIGNAL);
    if (sent <= 0) return false;
    bytes += sent;
    length -= static_cast<std::size_t>(sent);
  }
  return true;
}
bool send_all(int fd, std::string_view text) { return send_all(fd, text.data(), text.size()); }

// Reads exactly n bytes (fewer: the connection ended or 5 s passed).
Bytes read_n(int fd, std::size_t n) {
  Bytes out(n);
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::recv(fd, out.data() + got, n - got, 0);
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

// Reads until the end; the last recv's result says how it ended (0: FIN, -1: error in errno).
struct ReadAll {
  Bytes bytes;
  ssize_t last = 0;
  int error = 0;
};
ReadAll read_all(int fd) {
  ReadAll out;
  std::uint8_t buffer[65536];
  for (;;) {
    const ssize_t r = ::recv(fd, buffer, sizeof(buffer), 0);
    if (r <= 0) {
      out.last = r;
      out.error = r < 0 ? errno : 0;
      return out;
    }
    out.bytes.insert(out.bytes.end(), buffer, buffer + r);
  }
}

std::string text(const Bytes& bytes) { return {bytes.begin(), bytes.end()}; }

// A replica: a listening socket on address:port.
class Replica {
public:
  Replica(const char* address, std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    const sockaddr_in sa = v4(address, port);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)), 0) << std::strerror(errno);
    EXPECT_EQ(::listen(fd_, 16), 0);
  }
  ~Replica() { ::close(fd_); }
  // The next connection within 5 s, or -1.
  int accept() const {
    pollfd entry{fd_, POLLIN, 0};
    if (::poll(&entry, 1, 5000) != 1) return -1;
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) set_timeouts(fd);
    return fd;
  }

private:
  int fd_ = -1;
};

config::Service service(const std::string& name, std::vector<std::string> domains, const char* replica) {
  config::Service s;
  s.name = name;
  s.domains = std::move(domains);
  s.replicas = {config::Replica{.address = boost::asio::ip::make_address(replica), .weight = 1}};
  return s;
}

config::Ingress ingress() {
  config::Ingress in;
  in.name = "dom";
  in.service_ips = {boost::asio::ip::make_address("127.0.0.1")};
  in.domain_routing.http_ports = {kHttpPort};
  in.domain_routing.tls_ports = {kTlsPort};
  in.services = {service("svc-a", {"a.example.test", "*.a.example.test"}, "127.0.0.2"),
                 service("svc-b", {"b.example.test"}, "127.0.0.3")};
  return in;
}

// A ClientHello for server_name, as OpenSSL writes it.
Bytes client_hello(const char* server_name) {
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(context);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_tlsext_host_name(ssl, server_name);
  SSL_connect(ssl); // wants to read: the ClientHello is in out
  char* data = nullptr;
  const long length = BIO_get_mem_data(out, &data);
  Bytes hello(data, data + length);
  SSL_free(ssl);
  SSL_CTX_free(context);
  return hello;
}

class DomainProxyTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: unshares a network namespace";
    const ino_t before = netns_inode();
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    ASSERT_NE(netns_inode(), before);
    ASSERT_EQ(std::system("ip link set lo up"), 0);
    thread_ = std::thread([this] { io_.run(); });
  }

  template <typename F> auto on_io(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }
  void configure(const config::Ingress& in) {
    on_io([&] {
      proxy_.configure(in);
      return 0;
    });
  }
  nlohmann::json status() {
    return on_io([this] { return proxy_.status(); });
  }

  void TearDown() override {
    if (!thread_.joinable()) return;
    on_io([this] {
      proxy_.stop();
      return 0;
    });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ = boost::asio::make_work_guard(io_);
  DomainProxy proxy_{io_};
  std::thread thread_;
};

TEST(ProxyV2Header, Ipv4AndIpv6) {
  using boost::asio::ip::make_address;
  using boost::asio::ip::tcp;
  const Bytes v4 = xdpfwd::ingress::proxy_v2_header(tcp::endpoint(make_address("198.18.1.2"), 40000),
                                                    tcp::endpoint(make_address("198.18.0.30"), 443));
  const Bytes expected4 = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0, 12,
                           198,  18,   1,    2,    198,  18,   0,    30,   0x9c, 0x40, 0x01, 0xbb};
  EXPECT_EQ(v4, expected4);
  const Bytes v6 = xdpfwd::ingress::proxy_v2_header(tcp::endpoint(make_address("fd00:1::2"), 40000),
                                                    tcp::endpoint(make_address("fd00:18::30"), 80));
  ASSERT_EQ(v6.size(), 16u + 36u);
  EXPECT_EQ(v6[13], 0x21);
  EXPECT_EQ(v6[15], 36);
  EXPECT_EQ(v6[16], 0xfd);
  EXPECT_EQ(v6[16 + 15], 2);
  EXPECT_EQ(v6[32 + 15], 0x30);
  EXPECT_EQ(v6[48], 0x9c);
  EXPECT_EQ(v6[51], 80);
  // A v4-mapped client of a dual-stack socket is announced as IPv4.
  const Bytes mapped = xdpfwd::ingress::proxy_v2_header(tcp::endpoint(make_address("::ffff:198.18.1.2"), 40000),
                                                        tcp::endpoint(make_address("198.18.0.30"), 443));
  EXPECT_EQ(mapped, expected4);
}

TEST_F(DomainProxyTest, HostPicksTheServiceAndTheReplicaGetsProxyV2AndTheRequest) {
  config::Ingress in = ingress();
  in.domain_routing.proxy_protocol = true;
  configure(in);
  Replica b("127.0.0.3", kHttpPort);
  const int client = connect_to("127.0.0.1", kHttpPort);
  ASSERT_GE(client, 0);
  sockaddr_in local{};
  socklen_t length = sizeof(local);
  ::getsockname(client, reinterpret_cast<sockaddr*>(&local), &length);
  const std::string request = "GET / HTTP/1.1\r\nHost: B.Example.Test:18080\r\n\r\n";
  ASSERT_TRUE(send_all(client, request));

  const int replica = b.accept();
  ASSERT_GE(replica, 0);
  const Bytes header = read_n(replica, 28);
  ASSERT_EQ(header.size(), 28u);
  EXPECT_EQ(header[12], 0x21);
  EXPECT_EQ(header[13], 0x11);
  EXPECT_EQ(Bytes(header.begin() + 16, header.begin() + 20), (Bytes{127, 0, 0, 1}));
  EXPECT_EQ(header[24] << 8 | header[25], ntohs(local.sin_port));
  EXPECT_EQ(header[26] << 8 | header[27], kHttpPort);
  EXPECT_EQ(text(read_n(replica, request.size())), request);
  ASSERT_TRUE(send_all(replica, "hello"));
  EXPECT_EQ(text(read_n(client, 5)), "hello");
  ::close(replica);
  const ReadAll rest = read_all(client);
  EXPECT_EQ(rest.last, 0);
  ::close(client);
  const auto s = status();
  EXPECT_EQ(s["relayed"], 1);
  EXPECT_EQ(s["services"][1]["connections"], 1);
}

TEST_F(DomainProxyTest, UnknownHostGets421AndIsCounted) {
  configure(ingress());
  const int client = connect_to("127.0.0.1", kHttpPort);
  ASSERT_GE(client, 0);
  ASSERT_TRUE(send_all(client, "GET / HTTP/1.1\r\nHost: c.example.test\r\n\r\n"));
  const ReadAll answer = read_all(client);
  EXPECT_EQ(text(answer.bytes), xdpfwd::ingress::domain::kHttpMisdirectedRequest);
  EXPECT_EQ(answer.last, 0);
  ::close(client);
  EXPECT_EQ(status()["rejected"]["unknown_domain"], 1);
}

TEST_F(DomainProxyTest, ClientHelloOverSeveralSegmentsReachesItsReplicaWhole) {
  configure(ingress());
  Replica a("127.0.0.2", kTlsPort);
  const Bytes hello = client_hello("x.A.example.test");
  ASSERT_GT(hello.size(), 100u);
  const int client = connect_to("127.0.0.1", kTlsPort);
  ASSERT_GE(client, 0);
  const int one = 1;
  ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  for (const auto& [from, to] : {std::pair<std::size_t, std::size_t>{0, 3}, {3, 60}, {60, hello.size()}}) {
    ASSERT_TRUE(send_all(client, hello.data() + from, to - from));
    std::this_thread::sleep_for(20ms);
  }
  const int replica = a.accept();
  ASSERT_GE(replica, 0);
  EXPECT_EQ(read_n(replica, hello.size()), hello);
  ::close(replica);
  ::close(client);
}

TEST_F(DomainProxyTest, BulkBothWaysWithHalfClose) {
  configure(ingress());
  Replica a("127.0.0.2", kHttpPort);
  const std::string head = "POST / HTTP/1.1\r\nHost: a.example.test\r\nContent-Length: 4194304\r\n\r\n";
  Bytes body(4 << 20);
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<std::uint8_t>(i * 7 + i / 251);
  const int client = connect_to("127.0.0.1", kHttpPort);
  ASSERT_GE(client, 0);
  // The replica reads everything up to the client's FIN, then answers with all of it reversed
  // and closes.
  std::thread replica_side([&] {
    const int replica = a.accept();
    ASSERT_GE(replica, 0);
    ReadAll got = read_all(replica);
    EXPECT_EQ(got.last, 0) << "the client's FIN reaches the replica";
    EXPECT_EQ(got.bytes.size(), head.size() + body.size());
    std::reverse(got.bytes.begin(), got.bytes.end());
    EXPECT_TRUE(send_all(replica, got.bytes.data(), got.bytes.size()));
    ::close(replica);
  });
  std::thread sender([&] {
    EXPECT_TRUE(send_all(client, head));
    EXPECT_TRUE(send_all(client, body.data(), body.size()));
    ::shutdown(client, SHUT_WR);
  });
  const ReadAll answer = read_all(client);
  sender.join();
  replica_side.join();
  EXPECT_EQ(answer.last, 0);
  ASSERT_EQ(answer.bytes.size(), head.size() + body.size());
  EXPECT_TRUE(std::equal(body.rbegin(), body.rend(), answer.bytes.begin()));
  ::close(client);
  const auto s = status();
  EXPECT_EQ(s["bytes_to_replicas"], head.size() + body.size());
  EXPECT_EQ(s["bytes_to_clients"], head.size() + body.size());
  EXPECT_EQ(s["completed"], 1);
  EXPECT_EQ(s["active"], 0);
}

TEST_F(DomainProxyTest, AReplicaResetReachesTheClient) {
  configure(ingress());
  Replica a("127.0.0.2", kHttpPort);
  const int client = connect_to("127.0.0.1", kHttpPort);
  ASSERT_GE(client, 0);
  ASSERT_TRUE(send_all(client, "GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n"));
  const int replica = a.accept();
  ASSERT_GE(replica, 0);
  ASSERT_FALSE(read_n(replica, 10).empty());
  const linger reset{1, 0};
  ::setsockopt(replica, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  ::close(replica);
  const ReadAll end = read_all(client);
  EXPECT_EQ(end.last, -1);
  EXPECT_EQ(end.error, ECONNRESET);
  ::close(client);
  EXPECT_EQ(status()["drops"]["replica_reset"], 1);
}

TEST_F(DomainProxyTest, SilentClientsAreTimedOutAndConnectionsAreBounded) {
  config::Ingress in = ingress();
  in.domain_routing.first_bytes_timeout_ms = 300;
  in.domain_routing.max_connections = 1;
  configure(in);
  const auto start = std::chrono::steady_clock::now();
  const int silent = connect_to("127.0.0.1", kTlsPort);
  ASSERT_GE(silent, 0);
  for (int i = 0; i < 100 && status()["active"] != 1; ++i) std::this_thread::sleep_for(10ms);
  const int second = connect_to("127.0.0.1", kTlsPort);
  ASSERT_GE(second, 0);
  const ReadAll refused = read_all(second);
  EXPECT_EQ(refused.error, ECONNRESET);
  ::close(second);
  const ReadAll timed_out = read_all(silent);
  EXPECT_EQ(timed_out.last, 0);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
  ::close(silent);
  const auto s = status();
  EXPECT_EQ(s["drops"]["max_connections"], 1);
  EXPECT_EQ(s["drops"]["first_bytes_timeout"], 1);
}

TEST_F(DomainProxyTest, ConfigureFollowsThePortsAndOneServiceTerminatesNothing) {
  configure(ingress());
  EXPECT_EQ(status()["listeners"].size(), 2u);
  config::Ingress in = ingress();
  in.domain_routing.tls_ports.clear();
  configure(in);
  EXPECT_EQ(status()["listeners"], nlohmann::json::array({"127.0.0.1:18080 http"}));
  in.services.pop_back();
  configure(in);
  EXPECT_TRUE(status()["listeners"].empty());
  EXPECT_EQ(connect_to("127.0.0.1", kHttpPort), -1);
}

} // namespace
