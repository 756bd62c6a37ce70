// lab_peer: the lab's traffic endpoints, so tests and the demo need no tool beyond curl.
//   lab_peer udp-echo ADDR PORT [--name NAME]      answers each datagram with "NAME <payload>";
//                                                  on SIGTERM prints "received N"
//   lab_peer udp-send ADDR PORT [--count N] [--size BYTES] [--gap-us US] [--wait-ms MS] [--bind SRC]
//                                                  sends N datagrams, collects the answers and
//                                                  prints "sent N received M" and "from NAME: K"
//   lab_peer http-serve ADDR PORT [--name NAME] [--proxy-v2] [--body-size BYTES]
//                                                  HTTP/1.1 (keep-alive) answering every request
//                                                  with "NAME client=ADDR:PORT\n" (padded with
//                                                  lines of 'x' to BYTES if larger); with --proxy-v2
//                                                  each connection starts with a PROXY protocol v2
//                                                  header and ADDR:PORT is the client it announces
//                                                  ("NAME client=ADDR:PORT proxy=v2")
//   lab_peer tls-serve ADDR PORT [--name NAME] [--proxy-v2]
//                                                  the same over TLS (a self-signed certificate for
//                                                  CN=NAME made at start), one request per connection,
//                                                  the answer ending in " sni=SERVERNAME"
//   lab_peer dns-serve ADDR PORT [--name NAME] [--answer IPV4]
//                                                  answers DNS queries: A with IPV4 (default
//                                                  10.99.0.1), TXT with "NAME", others with no record
//   lab_peer udp-flood ADDR PORT [--count N] [--gap-us US] [--sources CIDR]
//                                                  sends N IPv4 datagrams of --size bytes, each
//                                                  from a random source address of CIDR (default
//                                                  198.18.128.0/17) and port, one every US
//                                                  microseconds (raw socket; answers are not
//                                                  read); prints "flooded N"
//   lab_peer tcp-send ADDR PORT [--data TEXT] [--half-close] [--wait-ms MS]
//                                                  connects, sends TEXT ("\r" and "\n" escapes
//                                                  understood), with --half-close then shuts its
//                                                  sending side, prints what it receives until the
//                                                  peer ends or MS pass (default 2000), then
//                                                  "eof after N ms", "reset after N ms" or
//                                                  "timeout after N ms"
// Every loop is bounded: udp-send stops after --wait-ms without an answer; servers run until
// SIGTERM/SIGINT.
#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <algorithm>
#include <chrono>
#include <cstdint>
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
  long body_size = 0; // http-serve: answers padded to this many bytes
  long wait_ms = 2000;
  std::string bind; // udp-send: source address
  std::string data;       // tcp-send
  bool half_close = false; // tcp-send
  bool proxy_v2 = false; // http-serve, tls-serve: connections start with a PROXY v2 header
  std::string answer = "10.99.0.1"; // dns-serve: the address of A answers
  std::string sources = "198.18.128.0/17"; // udp-flood
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

// Reads exactly length bytes within 5 s; false otherwise.
bool read_exactly(int fd, std::uint8_t* out, size_t length) {
  size_t got = 0;
  for (int waited_ms = 0; got < length && waited_ms < 5000;) {
    if (!wait_readable(fd, 200)) {
      waited_ms += 200;
      continue;
    }
    const ssize_t n = ::recv(fd, out + got, length - got, 0);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return got == length;
}

// The PROXY protocol v2 header at the start of a connection: the client it announces as
// "ADDR:PORT", or "" when the header is missing or broken (haproxy's proxy-protocol.txt 2.2).
std::string read_proxy_v2(int fd) {
  static const std::uint8_t kSignature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  std::uint8_t header[16];
  if (!read_exactly(fd, header, sizeof(header)) || std::memcmp(header, kSignature, 12) != 0 || header[12] != 0x21) return "";
  const size_t length = static_cast<size_t>(header[14]) << 8 | header[15];
  std::vector<std::uint8_t> body(length);
  if (!read_exactly(fd, body.data(), length)) return "";
  char text[INET6_ADDRSTRLEN];
  if (header[13] == 0x11 && length >= 12) {
    ::inet_ntop(AF_INET, body.data(), text, sizeof(text));
    return std::string(text) + ":" + std::to_string(body[8] << 8 | body[9]);
  }
  if (header[13] == 0x21 && length >= 36) {
    ::inet_ntop(AF_INET6, body.data(), text, sizeof(text));
    return "[" + std::string(text) + "]:" + std::to_string(body[32] << 8 | body[33]);
  }
  return "";
}

// One connection: answers requests until the client closes, a stop signal or 30 s of silence.
void serve_http_connection(int fd, std::string peer, std::string name, bool proxy_v2, long body_size) {
  if (proxy_v2) {
    const std::string announced = read_proxy_v2(fd);
    if (announced.empty()) {
      ::close(fd);
      return;
    }
    peer = announced + " proxy=v2";
  }
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
      std::string body = name + " client=" + peer + "\n";
      while (static_cast<long>(body.size()) < body_size)
        body += std::string(static_cast<size_t>(std::min<long>(99, body_size - static_cast<long>(body.size()) - 1)), 'x') + "\n";
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
    connections.emplace_back(serve_http_connection, fd, to_string(peer), options.name, options.proxy_v2,
                             options.body_size);
  }
  for (auto& connection : connections) connection.join();
  return 0;
}

// A self-signed certificate for CN=name, made in memory.
SSL_CTX* make_tls_context(const std::string& name) {
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* certificate = X509_new();
  if (!context || !key || !certificate) throw std::runtime_error("OpenSSL: cannot make the TLS context");
  X509_set_version(certificate, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
  X509_gmtime_adj(X509_getm_notBefore(certificate), -3600);
  X509_gmtime_adj(X509_getm_notAfter(certificate), 86400);
  X509_NAME* subject = X509_get_subject_name(certificate);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(certificate, subject);
  X509_set_pubkey(certificate, key);
  if (X509_sign(certificate, key, EVP_sha256()) == 0 || SSL_CTX_use_certificate(context, certificate) != 1 ||
      SSL_CTX_use_PrivateKey(context, key) != 1)
    throw std::runtime_error("OpenSSL: cannot use the certificate");
  X509_free(certificate);
  EVP_PKEY_free(key);
  return context;
}

// One TLS connection: one request, answered with "NAME client=ADDR:PORT sni=SERVERNAME".
void serve_tls_connection(SSL_CTX* context, int fd, std::string peer, std::string name, bool proxy_v2) {
  if (proxy_v2) {
    const std::string announced = read_proxy_v2(fd);
    if (announced.empty()) {
      ::close(fd);
      return;
    }
    peer = announced + " proxy=v2";
  }
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  SSL* ssl = SSL_new(context);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) == 1) {
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
      const int got = SSL_read(ssl, buffer, sizeof(buffer));
      if (got <= 0) break;
      request.append(buffer, static_cast<size_t>(got));
    }
    const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const std::string body = name + " client=" + peer + " sni=" + (sni ? sni : "-") + "\n";
    const std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    SSL_write(ssl, response.data(), static_cast<int>(response.size()));
    SSL_shutdown(ssl);
  }
  SSL_free(ssl);
  ::close(fd);
}

int tls_serve(const std::string& address, const std::string& port, const Options& options) {
  SSL_CTX* context = make_tls_context(options.name);
  const int listener = bound_socket(address, port, SOCK_STREAM);
  if (::listen(listener, 128) < 0) fail("listen");
  std::printf("listening tls %s:%s\n", address.c_str(), port.c_str());
  std::fflush(stdout);
  std::vector<std::thread> connections;
  while (!stopping) {
    if (!wait_readable(listener, 200)) continue;
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof(peer);
    const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &peer_length, SOCK_CLOEXEC);
    if (fd < 0) continue;
    connections.emplace_back(serve_tls_connection, context, fd, to_string(peer), options.name, options.proxy_v2);
  }
  for (auto& connection : connections) connection.join();
  SSL_CTX_free(context);
  return 0;
}

// The answer to one DNS query (RFC 1035 4.1): its header and first question, then one A record
// (answer) or TXT record (name) for the question's name, by compression pointer to it.
std::vector<std::uint8_t> dns_answer(const std::uint8_t* query, size_t length, const Options& options) {
  if (length < 12 || (query[2] & 0x80) != 0) return {};
  size_t end = 12;
  while (end < length && query[end] != 0) {
    if ((query[end] & 0xC0) != 0) return {}; // no compression in a question we answer
    end += 1 + query[end];
  }
  if (end + 5 > length) return {};
  const std::uint16_t qtype = static_cast<std::uint16_t>(query[end + 1] << 8 | query[end + 2]);
  end += 5; // root label, QTYPE, QCLASS
  std::vector<std::uint8_t> answer(query, query + end);
  answer[2] = static_cast<std::uint8_t>(0x84 | (query[2] & 0x01)); // QR, AA, RD as asked
  answer[3] = 0x00;                                                   // RCODE NOERROR
  answer[4] = 0, answer[5] = 1;                                       // QDCOUNT
  answer[8] = answer[9] = answer[10] = answer[11] = 0;                // NSCOUNT, ARCOUNT
  std::vector<std::uint8_t> data;
  if (qtype == 1) {
    in_addr address{};
    if (::inet_pton(AF_INET, options.answer.c_str(), &address) != 1) return {};
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(&address);
    data.assign(bytes, bytes + 4);
  } else if (qtype == 16) {
    const std::string text = options.name.substr(0, 255);
    data.reserve(1 + text.size());
    data.push_back(static_cast<std::uint8_t>(text.size()));
    for (const char c : text) data.push_back(static_cast<std::uint8_t>(c));
  }
  answer[6] = 0, answer[7] = data.empty() ? 0 : 1; // ANCOUNT
  if (!data.empty()) {
    const std::uint8_t record[] = {0xC0, 12, 0, static_cast<std::uint8_t>(qtype), 0, 1, 0, 0, 0, 60,
                                   0, static_cast<std::uint8_t>(data.size())};
    answer.insert(answer.end(), std::begin(record), std::end(record));
    answer.insert(answer.end(), data.begin(), data.end());
  }
  return answer;
}

int dns_serve(const std::string& address, const std::string& port, const Options& options) {
  const int fd = bound_socket(address, port, SOCK_DGRAM);
  long answered = 0;
  std::vector<std::uint8_t> buffer(65536);
  std::printf("listening dns %s:%s\n", address.c_str(), port.c_str());
  std::fflush(stdout);
  while (!stopping) {
    if (!wait_readable(fd, 200)) continue;
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof(peer);
    const ssize_t length =
        ::recvfrom(fd, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&peer), &peer_length);
    if (length <= 0) continue;
    const auto answer = dns_answer(buffer.data(), static_cast<size_t>(length), options);
    if (answer.empty()) continue;
    ++answered;
    ::sendto(fd, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_length);
  }
  std::printf("answered %ld\n", answered);
  return 0;
}

int tcp_send(const std::string& address, const std::string& port, const Options& options) {
  socklen_t length = 0;
  const sockaddr_storage target = resolve(address, port, length);
  const int fd = ::socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&target), length) < 0) fail("connect " + address + ":" + port);
  std::string data;
  for (size_t i = 0; i < options.data.size(); ++i) {
    if (options.data[i] == '\\' && i + 1 < options.data.size() && (options.data[i + 1] == 'r' || options.data[i + 1] == 'n')) {
      data += options.data[++i] == 'r' ? '\r' : '\n';
    } else {
      data += options.data[i];
    }
  }
  if (!data.empty() && ::send(fd, data.data(), data.size(), MSG_NOSIGNAL) < 0) fail("send");
  if (options.half_close) ::shutdown(fd, SHUT_WR);
  const auto start = std::chrono::steady_clock::now();
  auto elapsed_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  };
  char buffer[4096];
  std::string outcome = "timeout";
  while (elapsed_ms() < options.wait_ms) {
    if (!wait_readable(fd, 50)) continue;
    const ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
    if (got > 0) {
      std::fwrite(buffer, 1, static_cast<size_t>(got), stdout);
      continue;
    }
    outcome = got == 0 ? "eof" : "reset";
    break;
  }
  std::printf("\n%s after %lld ms\n", outcome.c_str(), static_cast<long long>(elapsed_ms()));
  ::close(fd);
  return 0;
}

// Every datagram a new flow: IPv4 and UDP headers written here (the kernel fills the IP
// checksum and ID; a UDP checksum of 0 means none), sources drawn by xorshift.
int udp_flood(const std::string& address, const std::string& port, const Options& options) {
  in_addr destination{}, base{};
  const auto slash = options.sources.find('/');
  if (::inet_pton(AF_INET, address.c_str(), &destination) != 1 || slash == std::string::npos ||
      ::inet_pton(AF_INET, options.sources.substr(0, slash).c_str(), &base) != 1)
    throw std::invalid_argument("udp-flood takes an IPv4 ADDR and --sources ADDR/LEN");
  const int prefix = std::stoi(options.sources.substr(slash + 1));
  if (prefix < 8 || prefix > 32) throw std::invalid_argument("--sources: prefix length 8-32");
  const std::uint32_t host_mask = prefix == 32 ? 0 : (0xffffffffu >> prefix);
  const int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW); // IP_HDRINCL implied
  if (fd < 0) fail("raw socket");
  const std::size_t payload = static_cast<std::size_t>(std::max(options.size, 0L));
  std::vector<std::uint8_t> frame(sizeof(iphdr) + sizeof(udphdr) + payload, 'x');
  auto* ip = reinterpret_cast<iphdr*>(frame.data());
  auto* udp = reinterpret_cast<udphdr*>(frame.data() + sizeof(iphdr));
  *ip = iphdr{};
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons(static_cast<std::uint16_t>(frame.size()));
  ip->daddr = destination.s_addr;
  *udp = udphdr{};
  udp->dest = htons(static_cast<std::uint16_t>(std::stoi(port)));
  udp->len = htons(static_cast<std::uint16_t>(sizeof(udphdr) + payload));
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_addr = destination;
  std::uint64_t state = 0x9e3779b97f4a7c15ull ^ static_cast<std::uint64_t>(::getpid());
  auto next_random = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const auto start = std::chrono::steady_clock::now();
  long sent = 0;
  for (; sent < options.count && !stopping; ++sent) {
    const std::uint64_t random = next_random();
    ip->saddr = htonl((ntohl(base.s_addr) & ~host_mask) | (static_cast<std::uint32_t>(random) & host_mask));
    udp->source = htons(static_cast<std::uint16_t>(1024 + (random >> 32) % 64000));
    if (::sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) < 0 &&
        errno != ENOBUFS)
      fail("sendto");
    if (options.gap_us > 0) std::this_thread::sleep_until(start + std::chrono::microseconds(options.gap_us * (sent + 1)));
  }
  std::printf("flooded %ld\n", sent);
  ::close(fd);
  return 0;
}

Options parse_options(int argc, char** argv, int first) {
  Options options;
  for (int i = first; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--proxy-v2" || flag == "--half-close") {
      (flag == "--proxy-v2" ? options.proxy_v2 : options.half_close) = true;
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--name") options.name = value;
    else if (flag == "--count") options.count = std::stol(value);
    else if (flag == "--size") options.size = std::stol(value);
    else if (flag == "--gap-us") options.gap_us = std::stol(value);
    else if (flag == "--body-size") options.body_size = std::stol(value);
    else if (flag == "--wait-ms") options.wait_ms = std::stol(value);
    else if (flag == "--bind") options.bind = value;
    else if (flag == "--answer") options.answer = value;
    else if (flag == "--data") options.data = value;
    else if (flag == "--sources") options.sources = value;
    else throw std::invalid_argument("unknown option " + flag);
  }
  return options;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: lab_peer udp-echo|udp-send|http-serve|tls-serve|dns-serve ADDR PORT [options]\n");
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
    if (mode == "udp-flood") return udp_flood(argv[2], argv[3], options);
    if (mode == "tcp-send") return tcp_send(argv[2], argv[3], options);
    if (mode == "tls-serve") return tls_serve(argv[2], argv[3], options);
    if (mode == "dns-serve") return dns_serve(argv[2], argv[3], options);
    throw std::invalid_argument("unknown mode " + mode);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "lab_peer: %s\n", error.what());
    return 2;
  }
}
