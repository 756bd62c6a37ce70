// Serves GET /metrics (Prometheus text) on metrics.listen, by default 127.0.0.1:9469: HTTP/1.1
// with Boost.Beast, one request per connection, bounded request size and time.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <string>

namespace xdpfwd {

class MetricsServer {
public:
  // listen: "host:port" or "[v6]:port"; throws std::runtime_error naming listen and why.
  MetricsServer(boost::asio::io_context& io, const std::string& listen, std::function<std::string()> body);

private:
  void accept();

  boost::asio::ip::tcp::acceptor acceptor_;
  std::function<std::string()> body_;
};

} // namespace xdpfwd
