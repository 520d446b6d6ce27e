/* tests/plugins/ext_test.h — the vtable of the test extension kind. */
#ifndef EXT_TEST_H
#define EXT_TEST_H
#include <stddef.h>
#include <stdint.h>
struct ext_test_ops {
	size_t size;
	int64_t (*score)(void *state, int64_t x);
};
#endif
