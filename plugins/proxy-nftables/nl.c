/* plugins/proxy-nftables/nl.c — see nl.h. libnftnl writes the nf_tables
 * messages into its batch pages and parses the kernel's; libmnl owns the
 * socket, the element nests and the walk over replies. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "nl.h"

/* An element message is closed once it passes this size: the kernel takes
 * any (the element nest must stay under 64 KiB), but an error names one
 * message, and small ones keep that useful. */
#define MSG_MAX (32 * 1024)
/* Batch pages: few of them (sendmsg takes at most 1024 iovecs), each with
 * room past its end for the one message that overflowed it, which libnftnl
 * then moves to the next page. An element is under 1 KiB (key and data at
 * most 64 bytes each, a chain name 256). */
#define PAGE_BYTES (1u << 20)
#define PAGE_OVERRUN (MSG_MAX + 4096u)
#define RECV_BYTES 65536 /* more than a dump's skb (at most 32 KiB) */

static struct mnl_socket *nl_open(void)
{
	struct mnl_socket *nl =
	    mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (nl == NULL)
		return NULL;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		mnl_socket_close(nl);
		errno = e;
		return NULL;
	}
	return nl;
}

struct list_arg {
	const char *table;
	void (*fn)(void *, bool, const char *, uint32_t);
	void *arg;
};

static int on_set(const struct nlmsghdr *nlh, void *data)
{
	struct list_arg *a = data;
	struct nftnl_set *s = nftnl_set_alloc();
	if (s == NULL || nftnl_set_nlmsg_parse(nlh, s) < 0) {
		if (s)
			nftnl_set_free(s);
		errno = errno ? errno : EINVAL;
		return MNL_CB_ERROR;
	}
	const char *t = nftnl_set_get_str(s, NFTNL_SET_TABLE);
	const char *name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	uint32_t flags = nftnl_set_is_set(s, NFTNL_SET_FLAGS) ?
	    nftnl_set_get_u32(s, NFTNL_SET_FLAGS) :
	    0;
	if (t && name && strcmp(t, a->table) == 0)
		a->fn(a->arg, false, name, flags);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

static int on_chain(const struct nlmsghdr *nlh, void *data)
{
	struct list_arg *a = data;
	struct nftnl_chain *c = nftnl_chain_alloc();
	if (c == NULL || nftnl_chain_nlmsg_parse(nlh, c) < 0) {
		if (c)
			nftnl_chain_free(c);
		errno = errno ? errno : EINVAL;
		return MNL_CB_ERROR;
	}
	const char *t = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
	const char *name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
	if (t && name && strcmp(t, a->table) == 0)
		a->fn(a->arg, true, name, 0);
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

/* One dump (GETSET or GETCHAIN) of the ip family, filtered by table: the
 * set dump fails with ENOENT when the table is missing. */
static int dump(struct mnl_socket *nl, bool chain, struct list_arg *a)
{
	char req[1024]; /* header, and a table name of at most 256 */
	uint32_t seq = (uint32_t)time(NULL);
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(req,
	    chain ? NFT_MSG_GETCHAIN : NFT_MSG_GETSET, NFPROTO_IPV4, NLM_F_DUMP,
	    seq);
	if (chain) {
		struct nftnl_chain *c = nftnl_chain_alloc();
		if (c == NULL ||
		    nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, a->table) < 0) {
			if (c)
				nftnl_chain_free(c);
			return -ENOMEM;
		}
		nftnl_chain_nlmsg_build_payload(nlh, c);
		nftnl_chain_free(c);
	} else {
		struct nftnl_set *s = nftnl_set_alloc();
		if (s == NULL ||
		    nftnl_set_set_str(s, NFTNL_SET_TABLE, a->table) < 0) {
			if (s)
				nftnl_set_free(s);
			return -ENOMEM;
		}
		nftnl_set_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
	}
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	char *buf = malloc(RECV_BYTES);
	if (buf == NULL)
		return -ENOMEM;
	unsigned portid = mnl_socket_get_portid(nl);
	int rc;
	do {
		ssize_t n = mnl_socket_recvfrom(nl, buf, RECV_BYTES);
		if (n < 0) {
			rc = errno == EINTR ? MNL_CB_OK : -errno;
			continue;
		}
		/* MNL_CB_STOP (0) at NLMSG_DONE; -1 and errno for the
		 * kernel's error, or an interrupted dump (EINTR) */
		rc = mnl_cb_run(buf, (size_t)n, seq, portid,
		    chain ? on_chain : on_set, a);
		if (rc < 0)
			rc = -errno;
	} while (rc > 0);
	free(buf);
	return rc;
}

int pxnl_list(const char *table,
    void (*fn)(void *arg, bool chain, const char *name, uint32_t flags),
    void *arg)
{
	if (strlen(table) >= NFT_TABLE_MAXNAMELEN)
		return -ENAMETOOLONG;
	struct list_arg a = { .table = table, .fn = fn, .arg = arg };
	struct mnl_socket *nl = nl_open();
	if (nl == NULL)
		return -errno;
	int rc = dump(nl, false, &a);
	if (rc == 0)
		rc = dump(nl, true, &a);
	mnl_socket_close(nl);
	return rc;
}

static void fail(struct pxnl_batch *t, int rc, const char *what)
{
	if (t->rc)
		return;
	t->rc = rc;
	snprintf(t->err, sizeof(t->err), "%s", what);
}

void pxnl_begin(struct pxnl_batch *t)
{
	memset(t, 0, sizeof(*t));
	t->seq0 = (uint32_t)time(NULL) << 8;
	t->nb = nftnl_batch_alloc(PAGE_BYTES, PAGE_OVERRUN);
	t->s = nftnl_set_alloc();
	t->e = nftnl_set_elem_alloc();
	if (t->nb == NULL || t->s == NULL || t->e == NULL) {
		fail(t, -ENOMEM, "building the batch: out of memory");
		return;
	}
	nftnl_batch_begin(nftnl_batch_buffer(t->nb), t->seq0);
	if (nftnl_batch_update(t->nb) < 0)
		fail(t, -ENOMEM, "building the batch: out of memory");
}

static void msg_close(struct pxnl_batch *t)
{
	if (t->nlh == NULL)
		return;
	mnl_attr_nest_end(t->nlh, t->elems);
	t->nlh = NULL;
	t->set = NULL;
	if (nftnl_batch_update(t->nb) < 0)
		fail(t, -ENOMEM, "building the batch: out of memory");
}

/* A NEWSETELEM message for `set`: its table and name through an empty
 * nftnl_set, then the nest the elements go into. */
static void msg_open(struct pxnl_batch *t, const char *table, const char *set)
{
	if (nftnl_set_set_str(t->s, NFTNL_SET_TABLE, table) < 0 ||
	    nftnl_set_set_str(t->s, NFTNL_SET_NAME, set) < 0) {
		fail(t, -ENOMEM, "building the batch: out of memory");
		return;
	}
	t->nmsg++;
	t->nlh = nftnl_nlmsg_build_hdr(nftnl_batch_buffer(t->nb),
	    NFT_MSG_NEWSETELEM, NFPROTO_IPV4, NLM_F_CREATE, t->seq0 + t->nmsg);
	nftnl_set_elems_nlmsg_build_payload(t->nlh, t->s);
	t->elems = mnl_attr_nest_start(t->nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	t->table = table;
	t->set = set;
	/* the elements of one set are all of one kind */
	nftnl_set_elem_unset(t->e, NFTNL_SET_ELEM_DATA);
	nftnl_set_elem_unset(t->e, NFTNL_SET_ELEM_VERDICT);
	nftnl_set_elem_unset(t->e, NFTNL_SET_ELEM_CHAIN);
}

static void elem(struct pxnl_batch *t, const char *table, const char *set,
    const void *key, size_t klen, const void *data, size_t dlen,
    const char *chain)
{
	if (t->rc)
		return;
	if (t->nlh == NULL || t->set != set || t->table != table ||
	    t->nlh->nlmsg_len > MSG_MAX) {
		msg_close(t);
		if (t->rc == 0)
			msg_open(t, table, set);
		if (t->rc)
			return;
	}
	struct nftnl_set_elem *e = t->e;
	if (klen > NFT_DATA_VALUE_MAXLEN || dlen > NFT_DATA_VALUE_MAXLEN ||
	    (chain && strlen(chain) >= NFT_CHAIN_MAXNAMELEN)) {
		fail(t, -EINVAL,
		    "building the batch: key, data or chain name too long");
		return;
	}
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, (uint32_t)klen);
	if (data) {
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data,
		    (uint32_t)dlen);
	} else if (chain) {
		/* most elements of a map go to the same few chains */
		const char *cur =
		    nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN) ?
		    nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN) :
		    NULL;
		if ((cur == NULL || strcmp(cur, chain) != 0) &&
		    nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, chain) <
			0) {
			fail(t, -ENOMEM, "building the batch: out of memory");
			return;
		}
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT,
		    (uint32_t)NFT_GOTO);
	}
	struct nlattr *n = mnl_attr_nest_start(t->nlh, NFTA_LIST_ELEM);
	nftnl_set_elem_nlmsg_build_payload(t->nlh, e);
	mnl_attr_nest_end(t->nlh, n);
}

void pxnl_elem(struct pxnl_batch *t, const char *table, const char *set,
    const void *key, size_t klen, const void *data, size_t dlen)
{
	elem(t, table, set, key, klen, data, dlen, NULL);
}

void pxnl_elem_goto(struct pxnl_batch *t, const char *table, const char *set,
    const void *key, size_t klen, const char *chain)
{
	elem(t, table, set, key, klen, NULL, 0, chain);
}

/* The kernel's first error, from its NLMSG_ERROR and extended ack. */
struct kerr {
	int rc;
	uint32_t seq;
	uint32_t off; /* of the refused attribute in our message, or 0 */
	char msg[96];
};

static int on_tlv(const struct nlattr *a, void *data)
{
	struct kerr *k = data;
	switch (mnl_attr_get_type(a)) {
	case NLMSGERR_ATTR_OFFS:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			k->off = mnl_attr_get_u32(a);
		break;
	case NLMSGERR_ATTR_MSG:
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			snprintf(k->msg, sizeof(k->msg), "%s",
			    mnl_attr_get_str(a));
		break;
	}
	return MNL_CB_OK;
}

static int on_error(const struct nlmsghdr *nlh, void *data)
{
	struct kerr *k = data;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		k->rc = -EBADMSG;
		return MNL_CB_STOP;
	}
	if (e->error == 0)
		return MNL_CB_OK;
	k->rc = e->error;
	k->seq = e->msg.nlmsg_seq;
	/* NETLINK_CAP_ACK: the TLVs follow the request's header alone */
	if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) &&
	    (nlh->nlmsg_flags & NLM_F_CAPPED))
		mnl_attr_parse(nlh, sizeof(*e), on_tlv, k);
	return MNL_CB_STOP;
}

/* Our message with sequence number seq, in the batch's pages. */
static const struct nlmsghdr *find_msg(const struct iovec *iov, int niov,
    uint32_t seq)
{
	for (int i = 0; i < niov; i++) {
		const struct nlmsghdr *h = iov[i].iov_base;
		int len = (int)iov[i].iov_len;
		for (; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len))
			if (h->nlmsg_seq == seq)
				return h;
	}
	return NULL;
}

/* "key 0a600001 00500000 00000003" (the key's bytes as sent, one 32-bit
 * register a group), then "goto <chain>" for a verdict. */
static void elem_text(struct nftnl_set_elem *e, char *out, size_t size)
{
	uint32_t klen = 0;
	const unsigned char *k =
	    nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
	size_t n = (size_t)snprintf(out, size, "key");
	for (uint32_t i = 0; k && i < klen && n + 4 < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%02x",
		    i % 4 ? "" : " ", k[i]);
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN) && n < size)
		snprintf(out + n, size - n, " goto %s",
		    nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN));
}

/* t->err: which message (set) and, when the kernel pointed at one, which
 * element of it it refused. */
static void describe(struct pxnl_batch *t, const struct iovec *iov, int niov,
    const struct kerr *k)
{
	const struct nlmsghdr *h = find_msg(iov, niov, k->seq);
	const char *sep = k->msg[0] ? ": " : "";
	if (h == NULL || NFNL_MSG_TYPE(h->nlmsg_type) != NFT_MSG_NEWSETELEM) {
		snprintf(t->err, sizeof(t->err),
		    "message %u of the batch (0 its begin, %u its end)%s%s",
		    k->seq - t->seq0, t->nmsg + 1, sep, k->msg);
		return;
	}
	/* the index of the element nest that holds the refused attribute */
	unsigned idx = 0, n = 0;
	const struct nlattr *a;
	mnl_attr_for_each(a, h, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		const struct nlattr *el;
		mnl_attr_for_each_nested(el, a)
		{
			n++;
			size_t at =
			    (size_t)((const char *)el - (const char *)h);
			if (k->off >= at && k->off < at + el->nla_len)
				idx = n;
		}
	}
	char what[128] = "";
	struct nftnl_set *s = nftnl_set_alloc();
	if (s && nftnl_set_elems_nlmsg_parse(h, s) == 0 && idx) {
		struct nftnl_set_elems_iter *it =
		    nftnl_set_elems_iter_create(s);
		struct nftnl_set_elem *e = it ? nftnl_set_elems_iter_next(it) :
						NULL;
		for (unsigned i = 1; e && i < idx; i++)
			e = nftnl_set_elems_iter_next(it);
		if (e)
			elem_text(e, what, sizeof(what));
		if (it)
			nftnl_set_elems_iter_destroy(it);
	}
	const char *set = s ? nftnl_set_get_str(s, NFTNL_SET_NAME) : NULL;
	if (idx)
		snprintf(t->err, sizeof(t->err),
		    "set %s, element %u of %u in message %u (%s)%s%s",
		    set ? set : "?", idx, n, k->seq - t->seq0, what, sep,
		    k->msg);
	else
		snprintf(t->err, sizeof(t->err),
		    "set %s, message %u of %u (%u elements)%s%s",
		    set ? set : "?", k->seq - t->seq0, t->nmsg, n, sep, k->msg);
	if (s)
		nftnl_set_free(s);
}

/* The kernel handles a batch inside sendmsg, so its errors are queued by
 * the time sendmsg returns: read them without waiting. No message asks
 * for an ACK, so nothing else is queued (and ~100 acks cannot fill the
 * receive buffer). */
static int read_errors(struct pxnl_batch *t, struct mnl_socket *nl,
    const struct iovec *iov, int niov)
{
	char *buf = malloc(RECV_BYTES);
	if (buf == NULL)
		return -ENOMEM;
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = { [NLMSG_ERROR] = on_error };
	struct kerr k = { 0 };
	int rc = 0;
	while (rc == 0 && k.rc == 0) {
		struct pollfd p = { .fd = mnl_socket_get_fd(nl),
			.events = POLLIN };
		int pr = poll(&p, 1, 0);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			rc = pr < 0 ? -errno : 0;
			break;
		}
		ssize_t n = mnl_socket_recvfrom(nl, buf, RECV_BYTES);
		if (n < 0) {
			if (errno != EINTR)
				rc = -errno;
			continue;
		}
		if (mnl_cb_run2(buf, (size_t)n, 0, mnl_socket_get_portid(nl),
			NULL, &k, ctl, NLMSG_MIN_TYPE) < 0)
			rc = -errno;
	}
	free(buf);
	if (k.rc) {
		describe(t, iov, niov, &k);
		return k.rc;
	}
	if (rc)
		snprintf(t->err, sizeof(t->err), "reading the kernel's answer");
	return rc;
}

static int send_batch(struct pxnl_batch *t)
{
	int niov = nftnl_batch_iovec_len(t->nb);
	struct iovec *iov = calloc((size_t)niov, sizeof(*iov));
	if (iov == NULL)
		return -ENOMEM;
	nftnl_batch_iovec(t->nb, iov, (uint32_t)niov);
	size_t len = 0;
	for (int i = 0; i < niov; i++)
		len += iov[i].iov_len;
	struct mnl_socket *nl = nl_open();
	if (nl == NULL) {
		int e = errno;
		free(iov);
		snprintf(t->err, sizeof(t->err), "opening a netlink socket");
		return -e;
	}
	int one = 1, fd = mnl_socket_get_fd(nl);
	/* errors without a copy of the (large) message, but with the offset
	 * of the element the kernel refused */
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	/* the batch must be one sendmsg: one skb, one transaction */
	int sz = len + 65536 > (size_t)1 << 30 ? 1 << 30 : (int)(len + 65536);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct msghdr m = { .msg_name = &kernel,
		.msg_namelen = sizeof(kernel),
		.msg_iov = iov,
		.msg_iovlen = (size_t)niov };
	ssize_t w;
	do
		w = sendmsg(fd, &m, 0);
	while (w < 0 && errno == EINTR);
	int rc = 0;
	if (w < 0 || (size_t)w != len) {
		rc = w < 0 ? -errno : -EMSGSIZE;
		snprintf(t->err, sizeof(t->err),
		    "sending the batch (%zu bytes, %u messages)", len, t->nmsg);
	} else {
		rc = read_errors(t, nl, iov, niov);
	}
	mnl_socket_close(nl);
	free(iov);
	return rc;
}

int pxnl_commit(struct pxnl_batch *t)
{
	if (t->rc == 0)
		msg_close(t);
	if (t->rc == 0 && t->nmsg == 0) {
		pxnl_free(t);
		return 0;
	}
	if (t->rc == 0) {
		nftnl_batch_end(nftnl_batch_buffer(t->nb),
		    t->seq0 + t->nmsg + 1);
		if (nftnl_batch_update(t->nb) < 0)
			fail(t, -ENOMEM, "building the batch: out of memory");
	}
	int rc = t->rc ? t->rc : send_batch(t);
	pxnl_free(t);
	return rc;
}

void pxnl_free(struct pxnl_batch *t)
{
	if (t->nb)
		nftnl_batch_free(t->nb);
	if (t->s)
		nftnl_set_free(t->s);
	if (t->e)
		nftnl_set_elem_free(t->e);
	t->nb = NULL;
	t->s = NULL;
	t->e = NULL;
	t->nlh = NULL;
	t->set = NULL;
	t->nmsg = 0;
}
