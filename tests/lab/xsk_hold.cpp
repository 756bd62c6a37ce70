// xsk_hold IFNAME: binds an AF_XDP socket to queue 0 of IFNAME (in the calling network namespace)
// and keeps it until SIGTERM or SIGINT. Meanwhile no other AF_XDP socket can bind there (EBUSY):
// afpacket_test uses it to make a restarted inspector fall back to AF_PACKET.
#include "umem.hpp"
#include "xsk_socket.hpp"

#include <csignal>
#include <cstdio>
#include <cerrno>
#include <chrono>
#include <exception>
#include <optional>
#include <system_error>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: xsk_hold IFNAME\n");
    return 2;
  }
  try {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, nullptr);
    using namespace xdpfwd::ingress::xsk;
    // A socket that just closed there releases the queue a moment later (deferred): retry a while.
    std::optional<XskSocket> socket;
    for (int attempt = 0; !socket; ++attempt) {
      try {
        socket.emplace(Umem::create({.frame_count = 1024, .frame_size = 4096, .frame_headroom = 0, .fill_size = 512,
                                     .comp_size = 512}),
                       argv[1], 0, -1);
      } catch (const std::system_error& error) {
        if (error.code().value() != EBUSY || attempt == 100) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    std::printf("holding queue 0 of %s\n", argv[1]);
    std::fflush(stdout);
    int signal = 0;
    sigwait(&stop, &signal);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "xsk_hold: %s\n", error.what());
    return 1;
  }
}
