#include "packet_gen.hpp"

#include "bench_abi.h"
#include "bytes.hpp"
#include "checksum.hpp"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace bench {
namespace {

using xdpfwd::ingress::packet::store_be16;
using xdpfwd::ingress::packet::store_be32;

constexpr std::uint32_t kFrameSize = 128; // a slot: tpacket2_hdr, then the frame (TPACKET_ALIGNMENT)
constexpr std::uint32_t kBlockSize = 1 << 16;
constexpr std::uint32_t kBlocks = 8; // 4,096 slots
// Where a TX slot's frame starts without PACKET_TX_HAS_OFF (net/packet/af_packet.c).
constexpr std::size_t kDataOffset = TPACKET2_HDRLEN - sizeof(sockaddr_ll);
static_assert(kDataOffset + BENCH_FRAME_LEN <= kFrameSize);

[[noreturn]] void fail(const std::string& what, int error = errno) {
  throw std::system_error(error, std::generic_category(), "AF_PACKET generator: " + what);
}

} // namespace

PacketGenerator::PacketGenerator(const std::string& dev, const FrameSpec& spec) : spec_(spec) {
  // Protocol 0: the socket sends only, it receives nothing.
  fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd_ < 0) fail("socket");
  try {
    const int version = TPACKET_V2, one = 1;
    if (::setsockopt(fd_, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0) fail("TPACKET_V2");
    // Straight to the driver (veth_xmit), as the live frames' XDP_TX is: no qdisc in the path.
    if (::setsockopt(fd_, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0) fail("PACKET_QDISC_BYPASS");
    tpacket_req request{};
    request.tp_block_size = kBlockSize;
    request.tp_block_nr = kBlocks;
    request.tp_frame_size = kFrameSize;
    request.tp_frame_nr = kBlockSize / kFrameSize * kBlocks;
    if (::setsockopt(fd_, SOL_PACKET, PACKET_TX_RING, &request, sizeof(request)) < 0) fail("PACKET_TX_RING");
    frame_count_ = request.tp_frame_nr;
    ring_size_ = std::size_t{kBlockSize} * kBlocks;
    void* ring = ::mmap(nullptr, ring_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (ring == MAP_FAILED) fail("map the TX ring");
    ring_ = static_cast<std::uint8_t*>(ring);
    sockaddr_ll where{};
    where.sll_family = AF_PACKET;
    where.sll_ifindex = static_cast<int>(::if_nametoindex(dev.c_str()));
    if (where.sll_ifindex == 0) fail("interface " + dev);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&where), sizeof(where)) < 0) fail("bind to " + dev);
  } catch (...) {
    if (ring_ != nullptr) ::munmap(ring_, ring_size_);
    ::close(fd_);
    throw;
  }
}

PacketGenerator::~PacketGenerator() {
  ::munmap(ring_, ring_size_);
  ::close(fd_);
}

// The frame of bench_gen.bpf.c: Ethernet, IPv4 (no options, DF clear), UDP without checksum,
// zero payload; the source as the flow rule says.
void PacketGenerator::write_frame(std::uint8_t* at) {
  std::uint32_t saddr = spec_.src_ip;
  std::uint16_t sport = spec_.src_port;
  if (spec_.flows == 0) {
    random_state_ ^= random_state_ << 13; // xorshift64: cheap and good enough for addresses
    random_state_ ^= random_state_ >> 7;
    random_state_ ^= random_state_ << 17;
    const auto random = static_cast<std::uint32_t>(random_state_);
    saddr = (spec_.src_ip & 0xffff0000) | (random & 0xffff);
    sport = static_cast<std::uint16_t>(1024 + (random >> 16) % 64512);
  } else if (spec_.flows > 1) {
    sport = static_cast<std::uint16_t>(spec_.src_port + next_flow_);
    if (++next_flow_ >= spec_.flows) next_flow_ = 0;
  }
  std::memset(at, 0, BENCH_FRAME_LEN);
  std::memcpy(at, spec_.dst_mac.data(), 6);
  std::memcpy(at + 6, spec_.src_mac.data(), 6);
  store_be16(at + 12, 0x0800);
  std::uint8_t* ip = at + 14;
  ip[0] = 0x45;
  store_be16(ip + 2, BENCH_FRAME_LEN - 14);
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  store_be32(ip + 12, saddr);
  store_be32(ip + 16, spec_.dst_ip);
  store_be16(ip + 10, xdpfwd::ingress::packet::csum::compute({ip, 20}));
  std::uint8_t* udp = ip + 20;
  store_be16(udp, sport);
  store_be16(udp + 2, spec_.dst_port);
  store_be16(udp + 4, BENCH_FRAME_LEN - 14 - 20);
}

void PacketGenerator::send(std::uint64_t count) {
  while (count > 0) {
    std::uint32_t queued = 0;
    while (queued < count && queued < frame_count_) {
      auto* slot = reinterpret_cast<tpacket2_hdr*>(ring_ + std::size_t{next_slot_} * kFrameSize);
      if (__atomic_load_n(&slot->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) break;
      write_frame(reinterpret_cast<std::uint8_t*>(slot) + kDataOffset);
      slot->tp_len = BENCH_FRAME_LEN;
      __atomic_store_n(&slot->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
      next_slot_ = (next_slot_ + 1) % frame_count_;
      ++queued;
    }
    // Blocking: the kernel sends every queued slot and returns when they are free again. A full
    // veth ring drops (the peer's tx_dropped), like an overrun NIC: those frames count as sent.
    if (::send(fd_, nullptr, 0, 0) < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR) fail("send");
    count -= queued;
  }
}

} // namespace bench
