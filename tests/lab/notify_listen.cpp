// notify_listen PATH: plays systemd's end of NOTIFY_SOCKET for tests. Binds a unix datagram
// socket at PATH and prints every sd_notify message on one line ("READY=1|STATUS=forwarding"),
// until SIGTERM/SIGINT.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {
volatile sig_atomic_t stopping = 0;
void on_stop_signal(int) { stopping = 1; }
} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: notify_listen PATH\n");
    return 2;
  }
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (std::strlen(argv[1]) >= sizeof(address.sun_path)) return 2;
  std::strcpy(address.sun_path, argv[1]);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ::unlink(argv[1]);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) < 0) {
    std::perror("notify_listen: bind");
    return 1;
  }
  std::printf("listening\n");
  char buffer[4096];
  while (!stopping) {
    pollfd entry{fd, POLLIN, 0};
    if (::poll(&entry, 1, 200) <= 0) continue;
    const ssize_t length = ::recv(fd, buffer, sizeof(buffer), 0);
    if (length <= 0) continue;
    std::string message(buffer, static_cast<size_t>(length));
    while (!message.empty() && message.back() == '\n') message.pop_back();
    for (char& c : message)
      if (c == '\n') c = '|';
    std::printf("%s\n", message.c_str());
  }
  ::unlink(argv[1]);
  return 0;
}
