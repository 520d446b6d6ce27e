/* admit_quantity.c — resource.Quantity: parsing as ParseQuantity does
 * (its grammar, suffixes, rounding up to nano units and the cap at
 * 2^63-1), comparing, and the canonical text the API server writes back
 * ("0.5" -> "500m", "1024Mi" -> "1Gi"), including the cases where
 * Kubernetes keeps the text as written. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

#define NANO ((__int128)1000000000)

struct qparts {
	bool neg;
	const char *num, *den, *suf;
	size_t nnum, nden;
};

/* parseQuantityString's grammar. */
static const char *split(const char *s, struct qparts *p)
{
	size_t pos = 0, end = strlen(s), start;

	memset(p, 0, sizeof *p);
	p->suf = "";
	if (pos < end && (s[0] == '-' || s[0] == '+'))
		p->neg = s[pos++] == '-';
	while (pos < end && s[pos] == '0')
		pos++;
	start = pos;
	while (pos < end && isdigit((unsigned char)s[pos]))
		pos++;
	p->num = s + start;
	p->nnum = pos - start;
	if (!p->nnum)
		p->num = "0", p->nnum = 1;
	if (pos < end && s[pos] == '.') {
		start = ++pos;
		while (pos < end && isdigit((unsigned char)s[pos]))
			pos++;
		p->den = s + start;
		p->nden = pos - start;
	}
	start = pos;
	while (pos < end && strchr("eEinumkKMGTP", s[pos]))
		pos++;
	if (pos < end && (s[pos] == '-' || s[pos] == '+'))
		pos++;
	while (pos < end && isdigit((unsigned char)s[pos]))
		pos++;
	if (pos < end)
		return ADM_QTY_FORMAT;
	p->suf = s + start;
	return NULL;
}

/* quantitySuffixer.interpret: base 10 or 2, the exponent, the format. */
static bool interpret(const char *suf, int *base, int *exp, int *fmt)
{
	static const char *const dec[] = { "n", "u", "m", "", "k", "M", "G",
		"T", "P", "E" };
	static const char *const bin[] = { "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };

	/* The usual suffixes, "", one letter, a letter and 'i': found by
	 * their first byte. */
	if (suf[0] == '\0') {
		*base = 10, *exp = 0, *fmt = ADM_Q_DECSI;
		return true;
	}
	if (suf[1] == '\0') {
		for (int i = 0; i < 10; i++)
			if (suf[0] == dec[i][0]) {
				*base = 10, *exp = i * 3 - 9, *fmt = ADM_Q_DECSI;
				return true;
			}
	} else if (suf[1] == 'i' && suf[2] == '\0') {
		for (int i = 0; i < 6; i++)
			if (suf[0] == bin[i][0]) {
				*base = 2, *exp = (i + 1) * 10, *fmt = ADM_Q_BINSI;
				return true;
			}
	}
	for (int i = 0; i < 10; i++)
		if (!strcmp(suf, dec[i])) {
			*base = 10, *exp = i * 3 - 9, *fmt = ADM_Q_DECSI;
			return true;
		}
	for (int i = 0; i < 6; i++)
		if (!strcmp(suf, bin[i])) {
			*base = 2, *exp = (i + 1) * 10, *fmt = ADM_Q_BINSI;
			return true;
		}
	if (strlen(suf) > 1 && (suf[0] == 'e' || suf[0] == 'E')) {
		const char *d = suf + 1 + (suf[1] == '+' || suf[1] == '-');
		if (!*d || strspn(d, "0123456789") != strlen(d) ||
		    strlen(d) > 6)
			return false;
		*base = 10, *exp = atoi(suf + 1), *fmt = ADM_Q_DECEXP;
		return true;
	}
	return false;
}

static const __int128 QMAX = (__int128)INT64_MAX * NANO;

/* m * 10^k (k >= 0), capped at QMAX. */
static __int128 scale10(__int128 m, long long k)
{
	for (; k > 0 && m != 0; k--)
		if (__builtin_mul_overflow(m, 10, &m) || m > QMAX)
			return QMAX;
	return m > QMAX ? QMAX : m;
}

/* The i-th digit of the number as written, the fraction's after the
 * whole part's. */
static int digit_at(const struct qparts *p, size_t i)
{
	return i < p->nnum ? p->num[i] - '0' : p->den[i - p->nnum] - '0';
}

/* The digits past the nano point, [cut, n), with `zeros` more before
 * them, times 2^b2: in nano units, rounded up. One pass from the last
 * digit, so that however many there are nothing overflows (the carry
 * stays below 2^b2). */
static __int128 tail_up(const struct qparts *p, size_t cut, size_t n,
    unsigned long long zeros, int b2)
{
	__int128 carry = 0, t;
	bool frac = false;

	for (size_t i = n; i > cut; i--) {
		t = (__int128)digit_at(p, i - 1) * ((__int128)1 << b2) + carry;
		frac |= t % 10 != 0;
		carry = t / 10;
	}
	for (; zeros > 0 && carry != 0; zeros--) {
		frac |= carry % 10 != 0;
		carry /= 10;
	}
	return carry + frac;
}

/* The exact value of the digits times base^exp, in nano units rounded
 * up once and capped at QMAX: digits * 2^b2 * 10^k. Only the digits
 * before the nano point are accumulated, so a long fraction ("1.000…E",
 * "0.1234…" with 40 digits) cannot overflow into the cap. */
static __int128 value_of(const struct qparts *p, int base, int exp)
{
	int b2 = base == 2 ? exp : 0;
	long long k = (base == 10 ? exp : 0) + 9 - (long long)p->nden;
	size_t n = p->nnum + p->nden, cut = n;
	unsigned long long zeros = 0;
	__int128 m = 0;

	if (k < 0) {
		unsigned long long j = (unsigned long long)-k;
		cut = j < n ? n - (size_t)j : 0;
		zeros = j - (n - cut);
	}
	for (size_t i = 0; i < cut; i++)
		if (__builtin_mul_overflow(m, 10, &m) ||
		    __builtin_add_overflow(m, digit_at(p, i), &m))
			return QMAX;
	for (int i = 0; i < b2; i++)
		if (__builtin_mul_overflow(m, 2, &m) || m > QMAX)
			return QMAX;
	m = k > 0 ? scale10(m, k) : m + tail_up(p, cut, n, zeros, b2);
	return m > QMAX ? QMAX : m;
}

/* ParseQuantity's fast path keeps the written text when it is already in
 * canonical form; mirror its conditions. */
static void keep_text(const char *s, const struct qparts *p, int exp,
    struct adm_qty *q)
{
	char shifted[40];
	long long v;

	if (p->nnum + p->nden > sizeof shifted - 1 || strlen(s) >= 64)
		return;
	/* nnum + nden < sizeof shifted, checked above */
	if (p->nnum)
		memcpy(shifted, p->num, p->nnum);
	if (p->nden)
		memcpy(shifted + p->nnum, p->den, p->nden);
	shifted[p->nnum + p->nden] = '\0';
	if (q->fmt == ADM_Q_BINSI) {
		if (exp < 0 || p->nden ||
		    15 - (int)p->nnum - (int)((float)exp * 3 / 10) - 1 < 0)
			return;
		q->scale = 0;
		v = atoll(shifted);
		if (exp % 10 == 0 && (v & 7) != 0)
			memcpy(q->orig, s, strlen(s) + 1); /* strlen(s) < 64 */
		return;
	}
	if (18 - (int)(p->nnum + p->nden) < 0 || exp - (int)p->nden < -9)
		return;
	q->scale = exp - (int)p->nden;
	size_t n = strlen(shifted);
	bool zeros = n >= 3 && !strcmp(shifted + n - 3, "000");
	if (q->scale % 3 == 0 && !zeros && shifted[0] != '0')
		memcpy(q->orig, s, strlen(s) + 1); /* strlen(s) < 64 */
}

const char *adm_qty_parse(const char *s, struct adm_qty *q)
{
	struct qparts p;
	int base, exp, fmt;
	const char *err;

	memset(q, 0, sizeof *q);
	q->scale = -9;
	if (!*s)
		return ADM_QTY_FORMAT;
	if (!strcmp(s, "0")) {
		strcpy(q->orig, "0");
		q->scale = 0;
		return NULL;
	}
	if ((err = split(s, &p)))
		return err;
	if (!interpret(p.suf, &base, &exp, &fmt))
		return ADM_QTY_SUFFIX;
	q->fmt = fmt;
	q->nanos = value_of(&p, base, exp);
	if (fmt == ADM_Q_BINSI && q->nanos > 0 && q->nanos < NANO)
		q->fmt = ADM_Q_DECSI;
	keep_text(s, &p, exp, q);
	if (p.neg)
		q->nanos = -q->nanos;
	return NULL;
}

/* Go's shortest round-tripping text of a float. */
static void real_text(double d, char *buf, size_t len)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return;
	}
}

const char *adm_qty_json(const json_t *v, struct adm_qty *q)
{
	char buf[64];
	char *copy;
	const char *err;

	if (json_is_integer(v)) {
		snprintf(buf, sizeof buf, "%lld",
		    (long long)json_integer_value(v));
		return adm_qty_parse(buf, q);
	}
	if (json_is_real(v)) {
		real_text(json_real_value(v), buf, sizeof buf);
		return adm_qty_parse(buf, q);
	}
	if (!json_is_string(v)) {
		memset(q, 0, sizeof *q);
		return ADM_QTY_FORMAT;
	}
	/* UnmarshalJSON trims spaces around the text */
	const char *s = json_string_value(v);
	size_t n = strlen(s); /* to a NUL, as the copy would be */
	if (n && !isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n - 1]))
		return adm_qty_parse(s, q); /* nothing to trim, the usual case */
	while (isspace((unsigned char)*s))
		s++;
	copy = strdup(s);
	for (n = strlen(copy); n && isspace((unsigned char)copy[n - 1]);)
		copy[--n] = 0;
	err = adm_qty_parse(copy, q);
	free(copy);
	return err;
}

static void print128(__int128 v, const char *suffix, char *buf, size_t len)
{
	char d[48];
	int i = (int)sizeof d;

	d[--i] = 0;
	do {
		d[--i] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v && i > 0);
	snprintf(buf, len, "%s%s", d + i, suffix);
}

static void decimal_text(__int128 mag, int fmt, char *buf, size_t len)
{
	static const char *const dec[] = { "n", "u", "m", "", "k", "M", "G",
		"T", "P", "E" };
	char suffix[16] = "";
	int e = -9;

	while (mag % 10 == 0) {
		mag /= 10;
		e++;
	}
	while (((e % 3) + 3) % 3) {
		mag *= 10;
		e--;
	}
	if (fmt == ADM_Q_DECEXP && e)
		snprintf(suffix, sizeof suffix, "e%d", e);
	else if (fmt != ADM_Q_DECEXP && e >= -9 && e <= 18)
		snprintf(suffix, sizeof suffix, "%s", dec[(e + 9) / 3]);
	print128(mag, suffix, buf, len);
}

void adm_qty_text(const struct adm_qty *q, char *buf, size_t len)
{
	static const char *const bin[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi",
		"Ei" };
	__int128 mag = q->nanos < 0 ? -q->nanos : q->nanos;
	int fmt = q->fmt;
	size_t off = q->nanos < 0;

	if (q->orig[0]) {
		size_t n = strnlen(q->orig, sizeof q->orig);
		if (len == 0)
			return;
		if (n > len - 1)
			n = len - 1;
		memcpy(buf, q->orig, n); /* as snprintf "%s" cuts it */
		buf[n] = '\0';
		return;
	}
	if (!mag) {
		snprintf(buf, len, "0");
		return;
	}
	if (off && len > 1)
		buf[0] = '-';
	if (fmt == ADM_Q_BINSI && (mag < 1024 * NANO || mag % NANO))
		fmt = ADM_Q_DECSI;
	if (fmt != ADM_Q_BINSI) {
		decimal_text(mag, fmt, buf + off, len - off);
		return;
	}
	int k = 0;
	for (mag /= NANO; mag % 1024 == 0 && k < 6; k++)
		mag /= 1024;
	print128(mag, bin[k], buf + off, len - off);
}

int adm_qty_cmp(const struct adm_qty *a, const struct adm_qty *b)
{
	return (a->nanos > b->nanos) - (a->nanos < b->nanos);
}

int adm_qty_sign(const struct adm_qty *q)
{
	return (q->nanos > 0) - (q->nanos < 0);
}

bool adm_qty_is_int(const struct adm_qty *q)
{
	/* MilliValue() rounds up to milli units */
	__int128 mag = q->nanos < 0 ? -q->nanos : q->nanos;
	__int128 milli = mag / 1000000 + (mag % 1000000 != 0);
	return milli % 1000 == 0;
}

void adm_qty_round_milli(struct adm_qty *q)
{
	__int128 mag = q->nanos < 0 ? -q->nanos : q->nanos;

	if (q->orig[0] && q->scale >= -3)
		return;
	q->orig[0] = 0;
	if (mag % 1000000)
		mag += 1000000 - mag % 1000000;
	q->nanos = q->nanos < 0 ? -mag : mag;
}
