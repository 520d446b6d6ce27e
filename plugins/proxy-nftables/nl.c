/* plugins/proxy-nftables/nl.c — see nl.h. Plain netlink sockets and the
 * kernel's uapi headers: no libmnl/libnftnl. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "nl.h"

/* elements go into messages of about this size (the kernel takes any, but
 * an error names the message, and small ones keep that useful) */
#define MSG_MAX (32 * 1024) /* and a nest stays under 64 KiB */

#define ALIGN4(n) (((n) + 3) & ~(size_t)3)

static int nl_open(size_t sndbuf)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0)
		return -errno;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	/* errors without a copy of the (large) message */
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if (sndbuf) {
		/* the batch must be one sendmsg: one skb, one transaction */
		int sz = sndbuf > (size_t)1 << 30 ? 1 << 30 : (int)sndbuf;
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz,
			sizeof(sz)) != 0)
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		int rb = 1 << 20;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb,
			sizeof(rb)) != 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
	}
	return fd;
}

/* Append n bytes (zero-padded to 4); the offset they start at. */
static size_t put(struct pxbuf *b, const void *p, size_t n)
{
	static const char zero[4];
	size_t at = b->n;
	pxbuf_addn(b, p, n);
	if (ALIGN4(n) != n)
		pxbuf_addn(b, zero, ALIGN4(n) - n);
	return at;
}

static size_t attr_open(struct pxbuf *b, uint16_t type)
{
	struct nlattr a = { .nla_len = 0, .nla_type = type | NLA_F_NESTED };
	return put(b, &a, sizeof(a));
}

static void attr_close(struct pxbuf *b, size_t at)
{
	if (b->oom)
		return;
	struct nlattr *a = (struct nlattr *)(b->p + at);
	a->nla_len = (uint16_t)(b->n - at);
}

static void attr(struct pxbuf *b, uint16_t type, const void *p, size_t n)
{
	struct nlattr a = { .nla_len = (uint16_t)(sizeof(a) + n),
		.nla_type = type };
	put(b, &a, sizeof(a));
	put(b, p, n);
}

static size_t msg_open(struct pxbuf *b, uint16_t type, uint16_t flags,
    uint32_t seq, uint8_t family, uint16_t res_id)
{
	struct nlmsghdr h = { .nlmsg_type = type,
		.nlmsg_flags = flags,
		.nlmsg_seq = seq };
	struct nfgenmsg g = { .nfgen_family = family,
		.version = NFNETLINK_V0,
		.res_id = htons(res_id) };
	size_t at = put(b, &h, sizeof(h));
	put(b, &g, sizeof(g));
	return at;
}

static void msg_close(struct pxbuf *b, size_t at)
{
	if (b->oom)
		return;
	struct nlmsghdr *h = (struct nlmsghdr *)(b->p + at);
	h->nlmsg_len = (uint32_t)(b->n - at);
}

/* Parse the attributes of an nf_tables message into tb[0..max]. */
static void parse_attrs(const struct nlmsghdr *h, const struct nlattr **tb,
    int max)
{
	memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
	size_t off = NLMSG_SPACE(sizeof(struct nfgenmsg));
	while (off + sizeof(struct nlattr) <= h->nlmsg_len) {
		const struct nlattr *a =
		    (const struct nlattr *)((const char *)h + off);
		if (a->nla_len < sizeof(*a) || off + a->nla_len > h->nlmsg_len)
			break;
		int t = a->nla_type & NLA_TYPE_MASK;
		if (t <= max)
			tb[t] = a;
		off += ALIGN4(a->nla_len);
	}
}

static const char *attr_str(const struct nlattr *a)
{
	if (a == NULL || a->nla_len <= sizeof(*a))
		return NULL;
	const char *s = (const char *)(a + 1);
	return memchr(s, '\0', a->nla_len - sizeof(*a)) ? s : NULL;
}

/* The message at *off in the n bytes received, and *off moved past it;
 * NULL at the end (or at a truncated message). */
static struct nlmsghdr *next_msg(char *buf, size_t n, size_t *off)
{
	if (*off + sizeof(struct nlmsghdr) > n)
		return NULL;
	struct nlmsghdr *h = (struct nlmsghdr *)(buf + *off);
	if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > n - *off)
		return NULL;
	*off += NLMSG_ALIGN(h->nlmsg_len);
	return h;
}

/* One dump (GETSET or GETCHAIN) of the ip family, filtered by table. */
static int dump(int fd, uint16_t msg, const char *table, bool chain,
    void (*fn)(void *, bool, const char *, uint32_t), void *arg)
{
	struct pxbuf q = { 0 };
	uint32_t seq = (uint32_t)time(NULL);
	size_t m = msg_open(&q, (NFNL_SUBSYS_NFTABLES << 8) | msg,
	    NLM_F_REQUEST | NLM_F_DUMP, seq, NFPROTO_IPV4, 0);
	attr(&q, chain ? NFTA_CHAIN_TABLE : NFTA_SET_TABLE, table,
	    strlen(table) + 1);
	msg_close(&q, m);
	if (q.oom) {
		pxbuf_free(&q);
		return -ENOMEM;
	}
	ssize_t w = send(fd, q.p, q.n, 0);
	pxbuf_free(&q);
	if (w < 0)
		return -errno;
	char *buf = malloc(65536);
	if (buf == NULL)
		return -ENOMEM;
	int rc = 0;
	for (bool done = false; !done;) {
		ssize_t n = recv(fd, buf, 65536, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		size_t off = 0;
		for (struct nlmsghdr *h;
		     (h = next_msg(buf, (size_t)n, &off));) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				rc = e->error;
				done = true;
				break;
			}
			const struct nlattr *tb[NFTA_SET_MAX + NFTA_CHAIN_MAX];
			int max = chain ? NFTA_CHAIN_MAX : NFTA_SET_MAX;
			parse_attrs(h, tb, max);
			const char *t = attr_str(
			    tb[chain ? NFTA_CHAIN_TABLE : NFTA_SET_TABLE]);
			const char *name = attr_str(
			    tb[chain ? NFTA_CHAIN_NAME : NFTA_SET_NAME]);
			uint32_t flags = 0;
			if (!chain && tb[NFTA_SET_FLAGS] &&
			    tb[NFTA_SET_FLAGS]->nla_len >= 8) {
				memcpy(&flags, tb[NFTA_SET_FLAGS] + 1, 4);
				flags = ntohl(flags);
			}
			if (t && name && strcmp(t, table) == 0)
				fn(arg, chain, name, flags);
		}
	}
	free(buf);
	return rc;
}

int pxnl_list(const char *table,
    void (*fn)(void *arg, bool chain, const char *name, uint32_t flags),
    void *arg)
{
	int fd = nl_open(0);
	if (fd < 0)
		return fd;
	int rc = dump(fd, NFT_MSG_GETSET, table, false, fn, arg);
	if (rc == 0)
		rc = dump(fd, NFT_MSG_GETCHAIN, table, true, fn, arg);
	close(fd);
	return rc;
}

void pxnl_begin(struct pxnl_batch *t)
{
	memset(t, 0, sizeof(*t));
	t->seq0 = (uint32_t)time(NULL) << 8;
	size_t m = msg_open(&t->b, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, t->seq0,
	    AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
	msg_close(&t->b, m);
}

static void close_open_msg(struct pxnl_batch *t)
{
	if (t->set == NULL)
		return;
	attr_close(&t->b, t->elems);
	msg_close(&t->b, t->msg);
	t->set = NULL;
}

static void elem(struct pxnl_batch *t, const char *table, const char *set,
    const void *key, size_t klen, const void *data, size_t dlen,
    const char *chain)
{
	struct pxbuf *b = &t->b;
	if (t->set != set || t->table != table || b->n - t->msg > MSG_MAX) {
		close_open_msg(t);
		t->nmsg++;
		t->msg = msg_open(b,
		    (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM,
		    NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, t->seq0 + t->nmsg,
		    NFPROTO_IPV4, 0);
		attr(b, NFTA_SET_ELEM_LIST_TABLE, table, strlen(table) + 1);
		attr(b, NFTA_SET_ELEM_LIST_SET, set, strlen(set) + 1);
		t->elems = attr_open(b, NFTA_SET_ELEM_LIST_ELEMENTS);
		t->set = set;
		t->table = table;
	}
	size_t e = attr_open(b, NFTA_LIST_ELEM);
	size_t k = attr_open(b, NFTA_SET_ELEM_KEY);
	attr(b, NFTA_DATA_VALUE, key, klen);
	attr_close(b, k);
	if (data) {
		size_t d = attr_open(b, NFTA_SET_ELEM_DATA);
		attr(b, NFTA_DATA_VALUE, data, dlen);
		attr_close(b, d);
	} else if (chain) {
		size_t d = attr_open(b, NFTA_SET_ELEM_DATA);
		size_t v = attr_open(b, NFTA_DATA_VERDICT);
		uint32_t code = htonl((uint32_t)NFT_GOTO);
		attr(b, NFTA_VERDICT_CODE, &code, 4);
		attr(b, NFTA_VERDICT_CHAIN, chain, strlen(chain) + 1);
		attr_close(b, v);
		attr_close(b, d);
	}
	attr_close(b, e);
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

int pxnl_commit(struct pxnl_batch *t)
{
	close_open_msg(t);
	if (t->nmsg == 0) {
		pxnl_free(t);
		return 0;
	}
	size_t m = msg_open(&t->b, NFNL_MSG_BATCH_END, NLM_F_REQUEST,
	    t->seq0 + t->nmsg + 1, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
	msg_close(&t->b, m);
	if (t->b.oom) {
		pxnl_free(t);
		return -ENOMEM;
	}
	int fd = nl_open(t->b.n + 65536);
	if (fd < 0) {
		pxnl_free(t);
		return fd;
	}
	int rc = 0;
	ssize_t w;
	do
		w = send(fd, t->b.p, t->b.n, 0);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		rc = -errno;
	else if ((size_t)w != t->b.n)
		rc = -EMSGSIZE;
	/* one ack per element message; the first error ends the wait (the
	 * kernel has aborted the whole transaction) */
	uint32_t acked = 0;
	char buf[8192];
	while (rc == 0 && acked < t->nmsg) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, 30000);
		if (pr == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		size_t off = 0;
		for (struct nlmsghdr *h;
		     (h = next_msg(buf, (size_t)n, &off));) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			const struct nlmsgerr *e = NLMSG_DATA(h);
			if (e->error) {
				rc = e->error;
				break;
			}
			if (h->nlmsg_seq > t->seq0 &&
			    h->nlmsg_seq <= t->seq0 + t->nmsg)
				acked++;
		}
	}
	close(fd);
	pxnl_free(t);
	return rc;
}

void pxnl_free(struct pxnl_batch *t)
{
	pxbuf_free(&t->b);
	t->nmsg = 0;
	t->set = NULL;
}
