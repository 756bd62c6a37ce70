// The control socket against bad clients: a line that is not JSON, a request the handler
// refuses, a line over the size limit, a peer that vanishes mid-line. Each is answered (or the
// connection closed) and the server goes on serving others.
#include "xdpfwd/control_server.hpp"
#include "xdpfwd/ingress_control.hpp"
#include "xdpfwd/unique_fd.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

namespace xdpfwd {
namespace {

using nlohmann::json;

class ControlServerTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("xdpfwd-control-test-" + std::to_string(::getpid()));
    path_ = dir_ / "control.sock";
    server_ = std::make_unique<ControlServer>(io_, path_, [](const json& request) -> json {
      if (request.value("op", "") == "throw") throw std::runtime_error("refused on purpose");
      return {{"ok", true}, {"echo", request}};
    });
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    work_.reset();
    boost::asio::post(io_, [this] { server_.reset(); });
    thread_.join();
    std::filesystem::remove_all(dir_);
  }

  UniqueFd connect_client() const {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) < 0)
      throw std::runtime_error("connect: " + std::string(std::strerror(errno)));
    return fd;
  }
  static void send_all(int fd, const std::string& text) {
    for (size_t sent = 0; sent < text.size();) {
      const ssize_t n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return; // the server closed: what it answered is still readable
      sent += static_cast<size_t>(n);
    }
  }
  // One answer line, or "" when the server closed without one (or 5 s passed).
  static std::string read_line(int fd) {
    std::string line;
    char c;
    while (true) {
      pollfd ready{fd, POLLIN, 0};
      if (::poll(&ready, 1, 5000) <= 0 || ::recv(fd, &c, 1, 0) != 1) return "";
      if (c == '\n') return line;
      line += c;
    }
  }
  // Closed with what we sent still unread: a unix socket reports that as a reset.
  static bool closed_by_server(int fd) {
    char c;
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, 5000) != 1) return false;
    const ssize_t n = ::recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{io_.get_executor()};
  std::filesystem::path dir_, path_;
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
};

TEST_F(ControlServerTest, SocketIsForItsOwnerOnly) {
  struct stat info {};
  ASSERT_EQ(::stat(path_.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 077, 0u) << std::oct << info.st_mode;
}

TEST_F(ControlServerTest, BadRequestsAreAnsweredAndTheConnectionGoesOn) {
  const UniqueFd client = connect_client();
  send_all(client.get(), "this is not json\n");
  const json not_json = json::parse(read_line(client.get()));
  EXPECT_FALSE(not_json.at("ok").get<bool>());
  EXPECT_NE(not_json.at("error").get<std::string>().find("parse error"), std::string::npos) << not_json;

  send_all(client.get(), R"({"op":"throw"})" "\n");
  EXPECT_EQ(json::parse(read_line(client.get())), (json{{"ok", false}, {"error", "refused on purpose"}}));

  send_all(client.get(), "\n"); // an empty line is not JSON either
  EXPECT_FALSE(json::parse(read_line(client.get())).at("ok").get<bool>());

  send_all(client.get(), R"({"op":"status"})" "\n");
  EXPECT_TRUE(json::parse(read_line(client.get())).at("ok").get<bool>());
}

TEST_F(ControlServerTest, OversizeLineIsRefusedAndTheConnectionClosed) {
  const UniqueFd client = connect_client();
  send_all(client.get(), std::string(kControlMessageLimit + 1, 'x'));
  EXPECT_EQ(json::parse(read_line(client.get())), (json{{"ok", false}, {"error", "request too long"}}));
  EXPECT_TRUE(closed_by_server(client.get()));
  // Others are still served.
  const UniqueFd other = connect_client();
  send_all(other.get(), R"({"op":"status"})" "\n");
  EXPECT_TRUE(json::parse(read_line(other.get())).at("ok").get<bool>());
}

TEST_F(ControlServerTest, PeersThatVanishMidLineLeaveNothingBehind) {
  for (int i = 0; i < 200; ++i) {
    UniqueFd client = connect_client();
    send_all(client.get(), R"({"op":"sta)");
  }
  const UniqueFd other = connect_client();
  send_all(other.get(), R"({"op":"status"})" "\n");
  EXPECT_TRUE(json::parse(read_line(other.get())).at("ok").get<bool>());
}

} // namespace
} // namespace xdpfwd
