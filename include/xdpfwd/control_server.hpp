// The answering end of a control socket (include/xdpfwd/ingress_control.hpp): accepts
// connections on a unix socket and answers each JSON line with the handler's reply: the
// inspectors towards the daemon, the daemon towards xdpfwdctl.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>

namespace xdpfwd {

class ControlServer {
public:
  // Called on the io_context's thread; may throw std::exception, answered as {"ok":false}.
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  // Replaces a stale socket file at path; the new one is mode 0600: its owner (root) only.
  ControlServer(boost::asio::io_context& io, std::filesystem::path path, Handler handler);
  ~ControlServer();

private:
  void accept();

  std::filesystem::path path_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  Handler handler_;
};

} // namespace xdpfwd
