/*
** A minimal unit-test harness: CHECK records a failure with its location
** and keeps going, so one run reports every broken case. Each test binary
** ends with the line "N passed, N failed" that scripts/run-tests.sh sums.
*/
#ifndef VDB_TESTUTIL_H
#define VDB_TESTUTIL_H
#include <stdio.h>

static int tuPassed = 0, tuFailed = 0;

#define CHECK(cond, ...) do{                                          \
  if( cond ){ tuPassed++; }                                           \
  else{                                                               \
    tuFailed++;                                                       \
    fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr);               \
  }                                                                   \
}while(0)

static int tuFinish(void){
  printf("%d passed, %d failed\n", tuPassed, tuFailed);
  return tuFailed ? 1 : 0;
}

/* Deterministic xorshift64* generator so failures reproduce. */
static unsigned long long tuRngState = 0x9E3779B97F4A7C15ull;
static unsigned long long tuRand(void){
  tuRngState ^= tuRngState >> 12;
  tuRngState ^= tuRngState << 25;
  tuRngState ^= tuRngState >> 27;
  return tuRngState * 2685821657736338717ull;
}
static __attribute__((unused)) float tuRandFloat(void){   /* uniform in [-1, 1) */
  return (float)((double)(tuRand() >> 11) / 4503599627370496.0 - 1.0);
}
#endif
