#include "alloc_counter.hpp"

#include <cstdlib>
#include <new>

namespace {
thread_local bool t_counting = false;
thread_local std::size_t t_count = 0;
}  // namespace

// Every non-aligned form is replaced, so that new and delete always pair up
// (sanitizers flag a malloc'd block freed by their own operator delete).
namespace {
void* counted_alloc(std::size_t n) noexcept {
  if (t_counting) ++t_count;
  return std::malloc(n ? n : 1);
}
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace divert::test {
AllocCounter::AllocCounter() {
  t_count = 0;
  t_counting = true;
}
AllocCounter::~AllocCounter() {
  t_counting = false;
}
std::size_t AllocCounter::count() const {
  return t_count;
}
}  // namespace divert::test
