#include "packet_ring.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <atomic>

namespace xdpfwd::ingress::afpacket {

PacketRing::PacketRing(Kind kind, const RingConfig& config, const std::string& what)
    : config_(config), what_(what), fd_(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)) {
  if (!fd_) throw_errno(what_ + ": AF_PACKET socket");
  const int version = TPACKET_V2;
  if (::setsockopt(fd_.get(), SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0)
    throw_errno(what_ + ": PACKET_VERSION TPACKET_V2");
  tpacket_req request{};
  request.tp_block_size = config_.frame_size;
  request.tp_block_nr = config_.frame_count;
  request.tp_frame_size = config_.frame_size;
  request.tp_frame_nr = config_.frame_count;
  const int option = kind == Kind::Rx ? PACKET_RX_RING : PACKET_TX_RING;
  if (::setsockopt(fd_.get(), SOL_PACKET, option, &request, sizeof request) < 0)
    throw_errno(what_ + (kind == Kind::Rx ? ": PACKET_RX_RING" : ": PACKET_TX_RING"));
  area_size_ = std::size_t{config_.frame_size} * config_.frame_count;
  void* area = ::mmap(nullptr, area_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (area == MAP_FAILED) throw_errno(what_ + ": mmap the ring");
  area_ = static_cast<std::uint8_t*>(area);
}

PacketRing::~PacketRing() {
  if (area_ != nullptr) ::munmap(area_, area_size_);
}

void PacketRing::bind(int ifindex, std::uint16_t ethertype) {
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_protocol = htons(ethertype);
  address.sll_ifindex = ifindex;
  if (::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) < 0)
    throw_errno(what_ + ": bind");
}

std::string interface_name(int ifindex) {
  char name[IF_NAMESIZE] = {};
  if (::if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) return "ifindex " + std::to_string(ifindex);
  return name;
}

std::uint32_t load_status(const tpacket2_hdr* header) noexcept {
  return std::atomic_ref(const_cast<tpacket2_hdr*>(header)->tp_status).load(std::memory_order_acquire);
}

void store_status(tpacket2_hdr* header, std::uint32_t status) noexcept {
  std::atomic_ref(header->tp_status).store(status, std::memory_order_release);
}

} // namespace xdpfwd::ingress::afpacket
