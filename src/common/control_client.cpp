#include "xdpfwd/control_client.hpp"

#include "xdpfwd/ingress_control.hpp"
#include "xdpfwd/system_error.hpp"
#include "xdpfwd/unique_fd.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

namespace xdpfwd {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for fd to be ready for events before deadline; ETIMEDOUT otherwise.
void wait_ready(int fd, short events, Clock::time_point deadline, const std::string& context) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw_errno(ETIMEDOUT, context);
    pollfd entry{fd, events, 0};
    const int ready = ::poll(&entry, 1, static_cast<int>(left));
    if (ready > 0) return;
    if (ready < 0 && errno != EINTR) throw_errno(context);
  }
}

} // namespace

nlohmann::json control_request(const std::filesystem::path& socket, const nlohmann::json& request,
                               std::chrono::milliseconds timeout) {
  const std::string where = socket.string();
  const auto deadline = Clock::now() + timeout;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (where.size() >= sizeof(address.sun_path)) throw_errno(ENAMETOOLONG, "control socket " + where);
  std::memcpy(address.sun_path, where.c_str(), where.size() + 1);

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw_errno("control socket " + where);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) < 0)
    throw_errno("connect to " + where);

  const std::string text = request.dump() + "\n";
  for (size_t sent = 0; sent < text.size();) {
    wait_ready(fd.get(), POLLOUT, deadline, "send to " + where);
    const ssize_t written = ::send(fd.get(), text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (written < 0 && errno != EAGAIN) throw_errno("send to " + where);
    if (written > 0) sent += static_cast<size_t>(written);
  }
  std::string answer;
  char buffer[65536];
  while (answer.find('\n') == std::string::npos) {
    wait_ready(fd.get(), POLLIN, deadline, "wait for the answer of " + where);
    const ssize_t got = ::recv(fd.get(), buffer, sizeof(buffer), 0);
    if (got == 0) throw_errno(ECONNRESET, "answer of " + where);
    if (got < 0 && errno != EAGAIN) throw_errno("answer of " + where);
    if (got > 0) answer.append(buffer, static_cast<size_t>(got));
    if (answer.size() > kControlMessageLimit) throw_errno(EMSGSIZE, "answer of " + where);
  }
  try {
    return nlohmann::json::parse(answer.substr(0, answer.find('\n')));
  } catch (const nlohmann::json::exception& error) {
    throw std::system_error(EBADMSG, std::generic_category(), "answer of " + where + ": " + error.what());
  }
}

} // namespace xdpfwd
