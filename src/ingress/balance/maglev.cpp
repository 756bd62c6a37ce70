#include "maglev.hpp"

#include "flow_key.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <string>

namespace xdpfwd::ingress::balance {
namespace {

constexpr std::uint64_t kOffsetSeed = 0x6d61676c65763031ULL; // the paper's h1
constexpr std::uint64_t kSkipSeed = 0x6d61676c65763032ULL;   // the paper's h2

bool is_prime(std::uint32_t n) {
  if (n < 2) return false;
  for (std::uint64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

constexpr std::size_t kAutoMinBackends = 128;
constexpr std::uint64_t kAutoEntriesPerBackend = 4096;
constexpr std::uint64_t kAutoMaxEntries = std::uint64_t{1} << 20;

} // namespace

std::uint32_t Maglev::auto_table_size(std::size_t backends) noexcept {
  if (backends == 0) return kMinTableSize;
  const std::uint64_t wanted =
      kAutoEntriesPerBackend * std::bit_ceil(std::max<std::uint64_t>(backends, kAutoMinBackends));
  std::uint32_t m = static_cast<std::uint32_t>(std::min(wanted, kAutoMaxEntries)) - 1;
  while (!is_prime(m)) --m;
  return m;
}

Maglev::Maglev(std::uint32_t table_size)
    : automatic_(table_size == kAutoTableSize),
      size_(automatic_ ? kMinTableSize : table_size),
      table_(size_, kNone) {
  if (!automatic_ && (table_size < kMinTableSize || !is_prime(table_size))) {
    throw std::invalid_argument("maglev table size " + std::to_string(table_size) +
                                " is not a prime >= " + std::to_string(kMinTableSize));
  }
}

void Maglev::build(std::span<const Backend> backends) {
  if (automatic_) {
    const std::uint32_t size = auto_table_size(backends.size());
    if (size != size_) {
      size_ = size;
      table_.assign(size_, kNone);
      table_.shrink_to_fit();
    }
  }
  sorted_.clear();
  std::uint32_t max_weight = 0;
  for (const Backend& b : backends) {
    if (b.weight == 0) continue;
    sorted_.push_back(b);
    max_weight = std::max(max_weight, b.weight);
  }
  std::fill(table_.begin(), table_.end(), kNone);
  if (sorted_.empty()) return;
  std::sort(sorted_.begin(), sorted_.end(),
            [](const Backend& a, const Backend& b) { return a.id < b.id; });

  const std::size_t n = sorted_.size();
  position_.resize(n);
  skip_.resize(n);
  credit_.assign(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    // permutation[j] = (offset + j * skip) mod M; skip in [1, M-1] and M prime make it a
    // permutation of [0, M).
    position_[i] = static_cast<std::uint32_t>(hash64(sorted_[i].id, kOffsetSeed) % size_);
    skip_[i] = static_cast<std::uint32_t>(hash64(sorted_[i].id, kSkipSeed) % (size_ - 1)) + 1;
  }

  // Weighted turns: each round a backend earns its weight in credit and claims one entry per
  // max_weight of credit, so entry counts follow the weights; with equal weights this is the
  // paper's round-robin fill and counts differ by at most one.
  std::uint32_t filled = 0;
  while (true) {
    for (std::size_t i = 0; i < n; ++i) {
      credit_[i] += sorted_[i].weight;
      if (credit_[i] < max_weight) continue;
      credit_[i] -= max_weight;
      std::uint64_t c = position_[i]; // 64-bit: c + skip may exceed 2^32 for huge tables
      while (table_[c] != kNone) {
        c += skip_[i];
        if (c >= size_) c -= size_;
      }
      table_[c] = sorted_[i].value;
      c += skip_[i];
      if (c >= size_) c -= size_;
      position_[i] = static_cast<std::uint32_t>(c);
      if (++filled == size_) return;
    }
  }
}

} // namespace xdpfwd::ingress::balance
