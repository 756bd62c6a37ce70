// lab_peer: the lab's traffic endpoints, so tests and the demo need no tool beyond curl.
//   lab_peer udp-echo ADDR PORT [--name NAME]      answers each datagram with "NAME <payload>";
//                                                  on SIGTERM prints "received N"
//   lab_peer udp-send ADDR PORT [--count N] [--size BYTES] [--gap-us US] [--wait-ms MS] [--bind SRC]
//                                                  sends N datagrams, collects the answers and
//                                                  prints "sent N received M" and "from NAME: K"
//   lab_peer http-serve ADDR PORT [--name NAME]    HTTP/1.1 (keep-alive) answering every request
//                                                  with "NAME client=ADDR:PORT\n"
// Every loop is bounded: udp-send stops after --wait-ms without an answer; servers run until
// SIGTERM/SIGINT.
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> stopping{false};
void on_stop_signal(int) { stopping = true; }

struct Options {
  std::string name = "peer";
  long count = 10;
  long size = 32;
  long gap_us = 0;
  long wait_ms = 2000;
  std::string bind; // udp-send: source address
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "lab_peer: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

sockaddr_storage resolve(const std::string& address, const std::string& port, socklen_t& length) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int error = ::getaddrinfo(address.c_str(), port.c_str(), &hints, &found); error != 0) {
    std::fprintf(stderr, "lab_peer: %s:%s: %s\n", address.c_str(), port.c_str(), gai_strerror(error));
    std::exit(2);
  }
  sockaddr_storage storage{};
  std::memcpy(&storage, found->ai_addr, found->ai_addrlen);
  length = found->ai_addrlen;
  ::freeaddrinfo(found);
  return storage;
}

// "198.18.1.2:4000" or "[fd00:1::2]:4000"; an IPv4 peer of a dual-stack socket shows as IPv4.
std::string to_string(const sockaddr_storage& address) {
  char host[NI_MAXHOST], port[NI_MAXSERV];
  ::getnameinfo(reinterpret_cast<const sockaddr*>(&address), sizeof(address), host, sizeof(host), port,
                sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
  std::string text = host;
  if (text.starts_with("::ffff:") && text.find('.') != std::string::npos) return text.substr(7) + ":" + port;
  return address.ss_family == AF_INET6 ? "[" + text + "]:" + port : text + ":" + port;
}

// Bursts of frames that XDP redirected arrive as skbs with a page-sized truesize: the default
// receive buffer holds only ~50 of them, so lab sockets get a large one (root may force it).
void enlarge_receive_buffer(int fd) {
  const int bytes = 8 << 20;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

int bound_socket(const std::string& address, const std::string& port, int type) {
  socklen_t length = 0;
  const sockaddr_storage local = resolve(address, port, length);
  const int fd = ::socket(local.ss_family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // Service IPs may be configured after the server starts in some tests.
  ::setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof(one));
  enlarge_receive_buffer(fd);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), length) < 0) fail("bind " + address + ":" + port);
  return fd;
}

// Waits for fd to be readable; false on timeout or when a stop signal arrived.
bool wait_readable(int fd, int timeout_ms) {
  pollfd entry{fd, POLLIN, 0};
  const int ready = ::poll(&entry, 1, timeout_ms);
  return ready > 0 && !stopping;
}

int udp_echo(const std::string& address, const std::string& port, const Options& options) {
  const int fd = bound_socket(address, port, SOCK_DGRAM);
  long received = 0;
  std::vector<char> buffer(65536);
  std::printf("listening udp %s:%s\n", address.c_str(), port.c_str());
  std::fflush(stdout);
  while (!stopping) {
    if (!wait_readable(fd, 200)) continue;
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof(peer);
    const ssize_t length =
        ::recvfrom(fd, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&peer), &peer_length);
    if (length < 0) continue;
    ++received;
    std::string answer = options.name + " " + std::string(buffer.data(), static_cast<size_t>(length));
    ::sendto(fd, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_length);
  }
  std::printf("received %ld\n", received);
  return 0;
}

int udp_send(const std::string& address, const std::string& port, const Options& options) {
  socklen_t length = 0;
  const sockaddr_storage target = resolve(address, port, length);
  const int fd = ::socket(target.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  enlarge_receive_buffer(fd);
  if (!options.bind.empty()) {
    socklen_t local_length = 0;
    const sockaddr_storage local = resolve(options.bind, "0", local_length);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), local_length) < 0) fail("bind " + options.bind);
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&target), length) < 0) fail("connect " + address);

  std::map<std::string, long> by_name;
  long received = 0;
  std::vector<char> buffer(65536);
  auto drain = [&](int timeout_ms) {
    while (wait_readable(fd, timeout_ms)) {
      const ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (got <= 0) continue; // ICMP errors surface here as ECONNREFUSED
      ++received;
      const std::string answer(buffer.data(), static_cast<size_t>(got));
      ++by_name[answer.substr(0, answer.find(' '))];
      timeout_ms = 0;
    }
  };
  for (long sequence = 0; sequence < options.count && !stopping; ++sequence) {
    std::string payload = "seq=" + std::to_string(sequence) + " ";
    payload.resize(static_cast<size_t>(std::max<long>(options.size, static_cast<long>(payload.size()))), 'x');
    if (::send(fd, payload.data(), payload.size(), 0) < 0 && errno != ECONNREFUSED) fail("send");
    if (options.gap_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(options.gap_us));
    drain(0);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.wait_ms);
  while (received < options.count && !stopping && std::chrono::steady_clock::now() < deadline) drain(50);
  std::printf("sent %ld received %ld\n", options.count, received);
  for (const auto& [name, count] : by_name) std::printf("from %s: %ld\n", name.c_str(), count);
  return 0;
}

// One connection: answers requests until the client closes, a stop signal or 30 s of silence.
void serve_http_connection(int fd, std::string peer, std::string name) {
  std::string pending;
  char buffer[4096];
  for (int idle_ms = 0; !stopping && idle_ms < 30000;) {
    if (!wait_readable(fd, 200)) {
      idle_ms += 200;
      continue;
    }
    idle_ms = 0;
    const ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
    if (got <= 0) break;
    pending.append(buffer, static_cast<size_t>(got));
    if (pending.size() > 65536) break; // a lab server, not a parser to test
    size_t end;
    while ((end = pending.find("\r\n\r\n")) != std::string::npos) {
      const bool close = pending.substr(0, end).find("Connection: close") != std::string::npos;
      pending.erase(0, end + 4);
      const std::string body = name + " client=" + peer + "\n";
      const std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                   std::to_string(body.size()) + "\r\n" + (close ? "Connection: close\r\n" : "") +
                                   "\r\n" + body;
      if (::send(fd, response.data(), response.size(), MSG_NOSIGNAL) < 0 || close) {
        ::close(fd);
        return;
      }
    }
  }
  ::close(fd);
}

int http_serve(const std::string& address, const std::string& port, const Options& options) {
  const int listener = bound_socket(address, port, SOCK_STREAM);
  if (::listen(listener, 128) < 0) fail("listen");
  std::printf("listening tcp %s:%s\n", address.c_str(), port.c_str());
  std::fflush(stdout);
  std::vector<std::thread> connections;
  while (!stopping) {
    if (!wait_readable(listener, 200)) continue;
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof(peer);
    const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &peer_length, SOCK_CLOEXEC);
    if (fd < 0) continue;
    connections.emplace_back(serve_http_connection, fd, to_string(peer), options.name);
  }
  for (auto& connection : connections) connection.join();
  return 0;
}

Options parse_options(int argc, char** argv, int first) {
  Options options;
  for (int i = first; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--name") options.name = value;
    else if (flag == "--count") options.count = std::stol(value);
    else if (flag == "--size") options.size = std::stol(value);
    else if (flag == "--gap-us") options.gap_us = std::stol(value);
    else if (flag == "--wait-ms") options.wait_ms = std::stol(value);
    else if (flag == "--bind") options.bind = value;
    else throw std::invalid_argument("unknown option " + flag);
  }
  return options;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: lab_peer udp-echo|udp-send|http-serve ADDR PORT [options]\n");
    return 2;
  }
  struct sigaction action{};
  action.sa_handler = on_stop_signal; // no SA_RESTART: poll() returns at once
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    const std::string mode = argv[1];
    const Options options = parse_options(argc, argv, 4);
    if (mode == "udp-echo") return udp_echo(argv[2], argv[3], options);
    if (mode == "udp-send") return udp_send(argv[2], argv[3], options);
    if (mode == "http-serve") return http_serve(argv[2], argv[3], options);
    throw std::invalid_argument("unknown mode " + mode);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "lab_peer: %s\n", error.what());
    return 2;
  }
}
