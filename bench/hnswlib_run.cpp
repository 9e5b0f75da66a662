// hnswlib on the same data and parameters as vectordb's HNSW benchmark.
//
//   hnswlib_run BASE.f32 QUERIES.f32 TRUTH.i32 DIM M EFC EF[,EF...]
//
// Inputs are raw little-endian arrays written by bench/ann_vs_hnswlib.py:
// float32 vectors, and the exact top-10 ids (0-based) per query. Prints one
// JSON object per line: the build, then one line per ef with recall@10,
// QPS and latency percentiles (single thread, one query at a time).
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

template <typename T> static std::vector<T> readAll(const char *path) {
  FILE *f = std::fopen(path, "rb");
  if (!f) { std::perror(path); std::exit(1); }
  std::fseek(f, 0, SEEK_END);
  long n = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  std::vector<T> v(n / sizeof(T));
  if (std::fread(v.data(), sizeof(T), v.size(), f) != v.size()) { std::perror(path); std::exit(1); }
  std::fclose(f);
  return v;
}

static double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char **argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s BASE QUERIES TRUTH DIM M EFC EF[,EF...]\n", argv[0]);
    return 2;
  }
  std::vector<float> base = readAll<float>(argv[1]), queries = readAll<float>(argv[2]);
  std::vector<int> truth = readAll<int>(argv[3]);
  size_t dim = std::strtoul(argv[4], nullptr, 10);
  int m = std::atoi(argv[5]), efc = std::atoi(argv[6]);
  size_t n = base.size() / dim, nq = queries.size() / dim;

  hnswlib::L2Space space(dim);
  hnswlib::HierarchicalNSW<float> index(&space, n, m, efc, 100);
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; i++) index.addPoint(base.data() + i * dim, i);
  double build = seconds(t0);
  std::printf("{\"system\": \"hnswlib\", \"build_s\": %.3f, \"rows\": %zu}\n", build, n);

  std::stringstream efs(argv[7]);
  std::string item;
  while (std::getline(efs, item, ',')) {
    int ef = std::atoi(item.c_str());
    index.setEf(ef);
    std::vector<double> lat(nq);
    size_t hits = 0;
    auto tAll = std::chrono::steady_clock::now();
    for (size_t q = 0; q < nq; q++) {
      auto tq = std::chrono::steady_clock::now();
      auto res = index.searchKnn(queries.data() + q * dim, 10);
      lat[q] = seconds(tq);
      while (!res.empty()) {
        size_t id = res.top().second;
        res.pop();
        for (int k = 0; k < 10; k++) if ((size_t)truth[q * 10 + k] == id) { hits++; break; }
      }
    }
    double total = seconds(tAll);
    std::sort(lat.begin(), lat.end());
    std::printf("{\"system\": \"hnswlib\", \"ef\": %d, \"recall\": %.4f, \"qps\": %.1f, "
                "\"p50_ms\": %.4f, \"p99_ms\": %.4f}\n",
                ef, hits / (10.0 * nq), nq / total, lat[nq / 2] * 1e3, lat[(nq * 99) / 100] * 1e3);
    std::fflush(stdout);
  }
  return 0;
}
