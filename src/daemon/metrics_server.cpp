#include "metrics_server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>

namespace xdpfwd {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using boost::asio::ip::tcp;

constexpr auto kRequestTimeout = std::chrono::seconds(5);
constexpr std::uint64_t kRequestLimit = 8192;

class Session : public std::enable_shared_from_this<Session> {
public:
  Session(tcp::socket socket, const std::function<std::string()>& body) : stream_(std::move(socket)), body_(body) {}

  void start() {
    parser_.body_limit(kRequestLimit);
    parser_.header_limit(kRequestLimit);
    stream_.expires_after(kRequestTimeout);
    http::async_read(stream_, buffer_, parser_, [self = shared_from_this()](beast::error_code error, size_t) {
      if (!error) self->answer();
    });
  }

private:
  void answer() {
    const auto& request = parser_.get();
    response_.version(request.version());
    response_.keep_alive(false);
    response_.set(http::field::server, "xdpfwd");
    if (request.method() != http::verb::get) {
      response_.result(http::status::method_not_allowed);
      response_.body() = "only GET\n";
    } else if (request.target() != "/metrics") {
      response_.result(http::status::not_found);
      response_.body() = "see /metrics\n";
    } else {
      try {
        response_.body() = body_();
        response_.result(http::status::ok);
        response_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      } catch (const std::exception& error) {
        response_.result(http::status::internal_server_error);
        response_.body() = std::string(error.what()) + "\n";
      }
    }
    response_.prepare_payload();
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request_parser<http::string_body> parser_;
  http::response<http::string_body> response_;
  const std::function<std::string()>& body_;
};

tcp::endpoint resolve(boost::asio::io_context& io, const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("metrics.listen \"" + listen + "\": no port");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  tcp::resolver resolver(io);
  boost::system::error_code error;
  const auto results = resolver.resolve(host, listen.substr(colon + 1), tcp::resolver::numeric_service, error);
  if (error || results.empty())
    throw std::runtime_error("metrics.listen \"" + listen + "\": " + (error ? error.message() : "no address"));
  return results.begin()->endpoint();
}

} // namespace

MetricsServer::MetricsServer(boost::asio::io_context& io, const std::string& listen, std::function<std::string()> body)
    : acceptor_(io), body_(std::move(body)) {
  const tcp::endpoint endpoint = resolve(io, listen);
  try {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
  } catch (const boost::system::system_error& error) {
    throw std::runtime_error("metrics.listen \"" + listen + "\": " + error.code().message());
  }
  spdlog::info("metrics on http://{}/metrics", listen);
  accept();
}

void MetricsServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& error, tcp::socket socket) {
    if (error == boost::asio::error::operation_aborted) return;
    if (!error) std::make_shared<Session>(std::move(socket), body_)->start();
    accept();
  });
}

} // namespace xdpfwd
