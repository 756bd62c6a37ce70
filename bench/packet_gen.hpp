// The generator's second engine, for kernels that refuse BPF_F_TEST_XDP_LIVE_FRAMES (EPERM): an
// AF_PACKET socket with a TX ring and PACKET_QDISC_BYPASS on one interface of the current netns.
// It sends the frames bench_gen.bpf.c makes (same layout, same flow rules), built in user space.
// Slower than live frames: the kernel builds an skb for every frame.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace bench {

struct FrameSpec {
  std::array<std::uint8_t, 6> dst_mac{};
  std::array<std::uint8_t, 6> src_mac{};
  std::uint32_t src_ip = 0; // host byte order
  std::uint32_t dst_ip = 0;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t flows = 1; // 1: one flow; > 1: source ports in turn; 0: ever-new (random source)
};

class PacketGenerator {
public:
  // Throws std::system_error naming the step that failed.
  PacketGenerator(const std::string& dev, const FrameSpec& spec);
  PacketGenerator(const PacketGenerator&) = delete;
  PacketGenerator& operator=(const PacketGenerator&) = delete;
  ~PacketGenerator();

  // Sends count frames (a ring's worth per kick, each kick waits for its frames to be sent).
  void send(std::uint64_t count);

private:
  void write_frame(std::uint8_t* at);

  FrameSpec spec_;
  int fd_ = -1;
  std::uint8_t* ring_ = nullptr;
  std::size_t ring_size_ = 0;
  std::uint32_t frame_count_ = 0;
  std::uint32_t next_slot_ = 0;
  std::uint32_t next_flow_ = 0;
  std::uint64_t random_state_ = 0x9e3779b97f4a7c15ULL;
};

} // namespace bench
