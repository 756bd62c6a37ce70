#include "xdpfwd/control_server.hpp"

#include "xdpfwd/ingress_control.hpp"

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <memory>

namespace xdpfwd {
namespace {

using boost::asio::local::stream_protocol;

// One connection: reads a line, answers it, until the peer closes or sends something bad.
class Session : public std::enable_shared_from_this<Session> {
public:
  Session(stream_protocol::socket socket, const ControlServer::Handler& handler)
      : socket_(std::move(socket)), buffer_(kControlMessageLimit), handler_(handler) {}

  void read() {
    boost::asio::async_read_until(socket_, buffer_, '\n',
                                  [self = shared_from_this()](const boost::system::error_code& error, size_t length) {
                                    self->on_line(error, length);
                                  });
  }

private:
  void on_line(const boost::system::error_code& error, size_t length) {
    if (error == boost::asio::error::not_found) return answer({{"ok", false}, {"error", "request too long"}}, true);
    if (error) return; // closed
    std::string line(boost::asio::buffers_begin(buffer_.data()), boost::asio::buffers_begin(buffer_.data()) + length);
    buffer_.consume(length);
    nlohmann::json reply;
    try {
      reply = handler_(nlohmann::json::parse(line));
    } catch (const std::exception& failure) {
      reply = {{"ok", false}, {"error", failure.what()}};
    }
    answer(reply, false);
  }

  void answer(const nlohmann::json& reply, bool then_close) {
    auto text = std::make_shared<std::string>(reply.dump() + "\n");
    boost::asio::async_write(socket_, boost::asio::buffer(*text),
                             [self = shared_from_this(), text, then_close](const boost::system::error_code& error, size_t) {
                               if (!error && !then_close) self->read();
                             });
  }

  stream_protocol::socket socket_;
  boost::asio::streambuf buffer_;
  const ControlServer::Handler& handler_;
};

} // namespace

ControlServer::ControlServer(boost::asio::io_context& io, std::filesystem::path path, Handler handler)
    : path_(std::move(path)), acceptor_(io), handler_(std::move(handler)) {
  std::filesystem::create_directories(path_.parent_path());
  std::filesystem::remove(path_); // a socket file left by an ingress that died
  // Connecting takes write permission on the socket file: root only (no group is configured),
  // from the bind on.
  const mode_t old_mask = ::umask(0077);
  acceptor_.open();
  acceptor_.bind(stream_protocol::endpoint(path_.string()));
  ::umask(old_mask);
  std::filesystem::permissions(path_, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  acceptor_.listen();
  accept();
}

ControlServer::~ControlServer() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  std::error_code also_ignored;
  std::filesystem::remove(path_, also_ignored);
}

void ControlServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& error, stream_protocol::socket socket) {
    if (error == boost::asio::error::operation_aborted) return;
    if (!error) std::make_shared<Session>(std::move(socket), handler_)->read();
    accept();
  });
}

} // namespace xdpfwd
