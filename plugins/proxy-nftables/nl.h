/* plugins/proxy-nftables/nl.h — the two things the backend says to
 * nf_tables over raw netlink instead of through libnftables: listing the
 * names of a table's sets and chains, and adding many map elements in one
 * batch (libnftables parses ~100,000 elements of text in ~1 s; the binary
 * batch costs the kernel's inserts and little else). */
#ifndef KUBUS_PXNL_H
#define KUBUS_PXNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proxy/pxbuf.h"

/* Call fn for every named set or map (chain false, set flags NFT_SET_*)
 * and every chain (chain true) of ip table `table`. 0, -ENOENT when the
 * table does not exist, or another -errno. */
int pxnl_list(const char *table,
    void (*fn)(void *arg, bool chain, const char *name, uint32_t flags),
    void *arg);

/* One transaction of element adds, built in a buffer. */
struct pxnl_batch {
	struct pxbuf b;
	uint32_t seq0, nmsg;
	size_t msg, elems; /* offsets of the open message and its nest */
	const char *table, *set;
};

void pxnl_begin(struct pxnl_batch *t);
/* Add element key -> data to map `set` of ip table `table` (both must
 * stay valid until pxnl_commit). */
void pxnl_elem(struct pxnl_batch *t, const char *table, const char *set,
    const void *key, size_t klen, const void *data, size_t dlen);
/* The same for a verdict map element: goto `chain` (valid until
 * pxnl_commit). */
void pxnl_elem_goto(struct pxnl_batch *t, const char *table, const char *set,
    const void *key, size_t klen, const char *chain);
/* Send the batch and wait for the kernel's answer; frees the buffer.
 * 0 or -errno (the kernel's, for a refused element). */
int pxnl_commit(struct pxnl_batch *t);
void pxnl_free(struct pxnl_batch *t);

#endif
