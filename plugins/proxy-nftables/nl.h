/* plugins/proxy-nftables/nl.h — the two things the backend says to
 * nf_tables over netlink (libnftnl builds and parses the messages, libmnl
 * carries them) instead of through libnftables: listing the names of a
 * table's sets and chains, and adding many map elements in one batch
 * (libnftables parses ~100,000 elements of text in ~1 s; the binary batch
 * costs the kernel's inserts and little else). */
#ifndef KUBUS_PXNL_H
#define KUBUS_PXNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nftnl_batch;
struct nftnl_set;
struct nftnl_set_elem;
struct nlmsghdr;
struct nlattr;

/* Call fn for every named set or map (chain false, set flags NFT_SET_*)
 * and every chain (chain true) of ip table `table`. 0, -ENOENT when the
 * table does not exist, or another -errno. */
int pxnl_list(const char *table,
    void (*fn)(void *arg, bool chain, const char *name, uint32_t flags),
    void *arg);

/* One transaction of element adds, built in libnftnl batch pages. The
 * fields are nl.c's; after a failed pxnl_commit, `err` says which
 * message and element the kernel refused. */
struct pxnl_batch {
	struct nftnl_batch *nb;
	struct nftnl_set *s;      /* table and set name of the open message */
	struct nftnl_set_elem *e; /* reused for every element */
	struct nlmsghdr *nlh;     /* the open message, or NULL */
	struct nlattr *elems;     /* its NFTA_SET_ELEM_LIST_ELEMENTS nest */
	const char *table, *set;  /* of the open message */
	uint32_t seq0, nmsg;
	int rc; /* first failure while building */
	char err[512];
};

void pxnl_begin(struct pxnl_batch *t);
/* Add element key -> data to map `set` of ip table `table` (data NULL: a
 * plain set's element). Both names must stay valid until pxnl_commit. */
void pxnl_elem(struct pxnl_batch *t, const char *table, const char *set,
    const void *key, size_t klen, const void *data, size_t dlen);
/* The same for a verdict map element: goto `chain`. */
void pxnl_elem_goto(struct pxnl_batch *t, const char *table, const char *set,
    const void *key, size_t klen, const char *chain);
/* Send the batch and collect the kernel's answer; frees the batch. 0 or
 * -errno (the kernel's, for a refused element: then t->err names it). */
int pxnl_commit(struct pxnl_batch *t);
void pxnl_free(struct pxnl_batch *t);

#endif
