/*
 * unit.h — the unit tests' assertions.  Each test-*.c is one program; its
 * main() calls RUN(fn) for each test and returns unit_summary(), which
 * prints "N passed, N failed" and exits non-zero on any failure.
 */
#ifndef UNIT_H
#define UNIT_H
#include <stdio.h>
#include <string.h>

static int unit_pass, unit_fail, unit_cur_failed;
static const char *unit_cur;

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "  FAIL %s:%d %s: %s\n", __FILE__, __LINE__, unit_cur, #cond); \
	unit_cur_failed = 1; } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
	if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) { \
	fprintf(stderr, "  FAIL %s:%d %s: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
	    unit_cur, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); unit_cur_failed = 1; } } while (0)
#define CHECK_INT(a, b) do { long long a_ = (a), b_ = (b); if (a_ != b_) { \
	fprintf(stderr, "  FAIL %s:%d %s: %lld != %lld (%s)\n", __FILE__, __LINE__, \
	    unit_cur, a_, b_, #a); unit_cur_failed = 1; } } while (0)

#define RUN(fn) do { unit_cur = #fn; unit_cur_failed = 0; fn(); \
	if (unit_cur_failed) { unit_fail++; printf("not ok - %s\n", #fn); } \
	else { unit_pass++; printf("ok - %s\n", #fn); } } while (0)

static inline int unit_summary(void)
{
	printf("%d passed, %d failed\n", unit_pass, unit_fail);
	return unit_fail ? 1 : 0;
}
#endif
