/*
 * test.h - the unit test harness: table-driven tests, one binary per
 * module, each printing "N passed, N failed" as its last line.
 *
 *	static void test_foo(void) { CHECK(1 + 1 == 2); CHECK_STR(a, "b"); }
 *	int main(void) { RUN(test_foo); return test_done(); }
 */
#ifndef TEST_H
#define TEST_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed, test_failed, test_cur_failed;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		printf("  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);\
		test_cur_failed++;					\
	}								\
} while (0)

#define CHECK_INT(got, want) do {					\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	if (g_ != w_) {							\
		printf("  FAIL %s:%d: %s = %lld, want %lld\n",		\
		    __FILE__, __LINE__, #got, g_, w_);			\
		test_cur_failed++;					\
	}								\
} while (0)

#define CHECK_STR(got, want) do {					\
	const char *g_ = (got), *w_ = (want);				\
	if (g_ == NULL || w_ == NULL ? g_ != w_ : strcmp(g_, w_) != 0) {\
		printf("  FAIL %s:%d: %s = \"%s\", want \"%s\"\n",	\
		    __FILE__, __LINE__, #got, g_ ? g_ : "(null)",	\
		    w_ ? w_ : "(null)");				\
		test_cur_failed++;					\
	}								\
} while (0)

/* Name a row of a table so a failure says which one. */
#define CHECK_ROW(cond, row) do {					\
	if (!(cond)) {							\
		printf("  FAIL %s:%d: row \"%s\": %s\n", __FILE__,	\
		    __LINE__, (row), #cond);				\
		test_cur_failed++;					\
	}								\
} while (0)

#define RUN(fn) do {							\
	test_cur_failed = 0;						\
	fn();								\
	if (test_cur_failed) {						\
		printf("FAIL %s\n", #fn);				\
		test_failed++;						\
	} else {							\
		printf("ok   %s\n", #fn);				\
		test_passed++;						\
	}								\
} while (0)

/* Entries of dir not starting with '.'; 9999 when it cannot be read. */
static inline unsigned int
test_count_files(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	unsigned int	 n = 0;

	if ((d = opendir(dir)) == NULL)
		return 9999;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Remove a temporary directory of the test and all it holds (a path
 * the test made, without quotes or spaces). */
static inline void
test_rmtree(const char *dir)
{
	char	cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("  cannot remove %s\n", dir);
}

static inline int
test_done(void)
{
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}

#endif
