/* image/unpack.c — layers to a root filesystem. Each layer tar (gzip,
 * zstd, … as libarchive reads them) is applied in order with OCI
 * whiteouts. Every path is resolved from a directory fd one component at a
 * time with O_NOFOLLOW, so no entry can reach outside the rootfs: ".."
 * components and paths that cross a symlink are refused. No chdir, so
 * several threads may unpack at once. Each blob's digest is checked while
 * it is read. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <dirent.h>

#include <archive.h>
#include <archive_entry.h>

#include <kubus/strmap.h>

#include "img_internal.h"

#define MAXCOMP 256

struct reader {
	int fd;
	struct img_hash h;
	char buf[1 << 16];
};

static la_ssize_t read_cb(struct archive *a, void *arg, const void **out)
{
	struct reader *r = arg;
	ssize_t n;
	do
		n = read(r->fd, r->buf, sizeof(r->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		archive_set_error(a, errno, "read: %s", strerror(errno));
		return -1;
	}
	img_hash_update(&r->h, r->buf, (size_t)n);
	*out = r->buf;
	return n;
}

/* Without root, a dir that is not u+rwx could not be filled: it stays
 * u+rwx while unpacking and gets its mode at the end. */
struct dirmode {
	char *path;
	mode_t mode;
};

struct layer {
	kb_image_store *st;
	int rootfd;
	bool root;            /* euid 0: set owners, make devices */
	struct dirmode *dirs; /* !root: modes to set at the end */
	size_t ndirs;
	struct kb_strmap seen; /* paths this layer wrote */
	const char *what;      /* "layer 2 (sha256:…)" for errors */
	char *err;
	size_t errlen;
};

/* Split a tar path into components: leading "/" and "." dropped, ".."
 * refused. The count, 0 for the root itself, -1 when it escapes, -2 when
 * it is deeper than MAXCOMP. */
static int split(char *p, char **comp)
{
	int n = 0;
	char *save = NULL;
	for (char *s = strtok_r(p, "/", &save); s;
	     s = strtok_r(NULL, "/", &save)) {
		if (!strcmp(s, "."))
			continue;
		if (!strcmp(s, ".."))
			return -1;
		if (n == MAXCOMP)
			return -2;
		comp[n++] = s;
	}
	return n;
}

static void join(char *out, size_t len, char **comp, int n)
{
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? "/" : "",
		    comp[i]);
}

static void mark_seen(struct layer *l, char **comp, int n)
{
	char path[PATH_MAX];
	for (int k = 1; k <= n; k++) {
		join(path, sizeof(path), comp, k);
		kb_strmap_put(&l->seen, path, (void *)1, NULL);
	}
}

/* An fd of the dir comp[0..n) below the rootfs, making missing dirs when
 * create. -1 with errno: ELOOP/ENOTDIR when a component is a symlink or a
 * file. */
static int walk(struct layer *l, char **comp, int n, bool create)
{
	int fd = dup(l->rootfd);
	for (int i = 0; i < n && fd >= 0; i++) {
		int nfd = openat(fd, comp[i],
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, comp[i], 0755) == 0 || errno == EEXIST)
				nfd = openat(fd, comp[i],
				    O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					O_CLOEXEC);
		}
		int e = errno;
		close(fd);
		fd = nfd;
		errno = e;
	}
	return fd;
}

static int walk_err(struct layer *l, const char *path)
{
	if (errno == ELOOP || errno == ENOTDIR)
		return img_err(l->err, l->errlen, KB_EINVAL,
		    "%s: %s: path crosses a symlink or a non-directory",
		    l->what, path);
	return img_err(l->err, l->errlen, KB_ESYS, "%s: %s: %s", l->what, path,
	    strerror(errno));
}

static int opaque(struct layer *l, char **comp, int n, const char *dirpath)
{
	int fd = walk(l, comp, n, false);
	if (fd < 0)
		return errno == ENOENT ? 0 : walk_err(l, dirpath);
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return img_err(l->err, l->errlen, KB_ESYS, "%s: %s: %s",
		    l->what, dirpath, strerror(errno));
	}
	struct dirent *de;
	char path[PATH_MAX + 300];
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s%s%s", dirpath,
		    *dirpath ? "/" : "", de->d_name);
		if (kb_strmap_get(&l->seen, path))
			continue;
		if (img_rmrf_at(dirfd(d), de->d_name) != 0) {
			rc = img_err(l->err, l->errlen, KB_ESYS, "%s: %s: %s",
			    l->what, path, strerror(errno));
			break;
		}
	}
	closedir(d);
	return rc;
}

static void set_owner_mode(struct layer *l, int fd, struct archive_entry *e)
{
	if (l->root &&
	    fchown(fd, (uid_t)archive_entry_uid(e),
		(gid_t)archive_entry_gid(e)) != 0) {
		/* best effort: e.g. an id the filesystem does not take */
	}
	/* After chown, which clears set-id bits. */
	if (fchmod(fd, archive_entry_mode(e) & 07777) != 0) {
		/* only fails on a read-only or odd filesystem */
	}
}

static void set_xattrs(int fd, struct archive_entry *e)
{
	const char *name;
	const void *val;
	size_t size;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &val, &size) == ARCHIVE_OK)
		if (fsetxattr(fd, name, val, size, 0) != 0) {
			/* not every filesystem or user may set every xattr */
		}
}

static int write_file(struct layer *l, struct archive *a,
    struct archive_entry *e, int pfd, const char *name, const char *path)
{
	int fd = openat(pfd, name,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return img_err(l->err, l->errlen, KB_ESYS, "%s: %s: %s",
		    l->what, path, strerror(errno));
	const void *buf;
	size_t size;
	la_int64_t off;
	int r, rc = 0;
	while (
	    (r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
		const char *p = buf;
		while (size) {
			ssize_t w = pwrite(fd, p, size, off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = img_err(l->err, l->errlen, KB_ESYS,
				    "%s: %s: %s", l->what, path,
				    strerror(errno));
				goto out;
			}
			p += w;
			size -= (size_t)w;
			off += w;
		}
	}
	if (r != ARCHIVE_EOF) {
		rc = img_err(l->err, l->errlen, KB_EINVAL, "%s: %s: %s",
		    l->what, path, archive_error_string(a) ?: "bad data");
		goto out;
	}
	/* Sparse files end in a hole. */
	if (ftruncate(fd, archive_entry_size(e)) != 0) {
		rc = img_err(l->err, l->errlen, KB_ESYS, "%s: %s: %s", l->what,
		    path, strerror(errno));
		goto out;
	}
	set_owner_mode(l, fd, e);
	set_xattrs(fd, e);
	struct timespec ts[2] = {
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
	};
	futimens(fd, ts);
out:
	close(fd);
	return rc;
}

static int entry(struct layer *l, struct archive *a, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e);
	char path[PATH_MAX], clean[PATH_MAX], *comp[MAXCOMP];
	if (raw == NULL || strlen(raw) >= sizeof(path))
		return img_err(l->err, l->errlen, KB_EINVAL,
		    "%s: an entry without a usable path", l->what);
	strcpy(path, raw);
	int n = split(path, comp);
	if (n < 0)
		return img_err(l->err, l->errlen, KB_EINVAL, "%s: %s: %s",
		    l->what, raw,
		    n == -1 ? "path escapes the rootfs" : "path too deep");
	if (n == 0)
		return 0; /* the root itself */
	join(clean, sizeof(clean), comp, n);
	const char *name = comp[n - 1];

	if (!strncmp(name, ".wh.", 4)) {
		char dirpath[PATH_MAX];
		join(dirpath, sizeof(dirpath), comp, n - 1);
		if (!strcmp(name, ".wh..wh..opq"))
			return opaque(l, comp, n - 1, dirpath);
		if (!strncmp(name, ".wh..wh.", 8))
			return 0; /* aufs bookkeeping */
		const char *victim = name + 4;
		char vpath[PATH_MAX + 300];
		snprintf(vpath, sizeof(vpath), "%s%s%s", dirpath,
		    *dirpath ? "/" : "", victim);
		if (!*victim || !strcmp(victim, ".") || !strcmp(victim, ".."))
			return img_err(l->err, l->errlen, KB_EINVAL,
			    "%s: %s: bad whiteout", l->what, raw);
		if (kb_strmap_get(&l->seen, vpath))
			return 0;
		int pfd = walk(l, comp, n - 1, false);
		if (pfd < 0)
			return errno == ENOENT ? 0 : walk_err(l, dirpath);
		int rc = 0;
		if (img_rmrf_at(pfd, victim) != 0)
			rc = img_err(l->err, l->errlen, KB_ESYS, "%s: %s: %s",
			    l->what, vpath, strerror(errno));
		close(pfd);
		return rc;
	}

	int pfd = walk(l, comp, n - 1, true);
	if (pfd < 0)
		return walk_err(l, clean);
	mark_seen(l, comp, n);
	int rc = 0;
	const char *link = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	struct stat sb;
	bool exists = fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0;
	if (exists && !(type == AE_IFDIR && !link && S_ISDIR(sb.st_mode))) {
		if (img_rmrf_at(pfd, name) != 0) {
			rc = img_err(l->err, l->errlen, KB_ESYS, "%s: %s: %s",
			    l->what, clean, strerror(errno));
			goto out;
		}
		exists = false;
	}

	if (link) {
		char tpath[PATH_MAX], *tcomp[MAXCOMP];
		if (strlen(link) >= sizeof(tpath)) {
			rc = img_err(l->err, l->errlen, KB_EINVAL,
			    "%s: %s: link target too long", l->what, clean);
			goto out;
		}
		strcpy(tpath, link);
		int tn = split(tpath, tcomp);
		if (tn <= 0) {
			rc = img_err(l->err, l->errlen, KB_EINVAL,
			    "%s: %s: hard link to %s escapes the rootfs",
			    l->what, clean, link);
			goto out;
		}
		int tfd = walk(l, tcomp, tn - 1, false);
		if (tfd < 0) {
			rc = walk_err(l, link);
			goto out;
		}
		if (linkat(tfd, tcomp[tn - 1], pfd, name, 0) != 0)
			rc = img_err(l->err, l->errlen, KB_EINVAL,
			    "%s: %s: hard link to %s: %s", l->what, clean, link,
			    strerror(errno));
		close(tfd);
		goto out;
	}

	switch (type) {
	case AE_IFREG:
		rc = write_file(l, a, e, pfd, name, clean);
		break;
	case AE_IFDIR: {
		if (!exists && mkdirat(pfd, name, 0700) != 0) {
			rc = img_err(l->err, l->errlen, KB_ESYS, "%s: %s: %s",
			    l->what, clean, strerror(errno));
			break;
		}
		int dfd = openat(pfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0) {
			rc = img_err(l->err, l->errlen, KB_ESYS, "%s: %s: %s",
			    l->what, clean, strerror(errno));
			break;
		}
		set_owner_mode(l, dfd, e);
		set_xattrs(dfd, e);
		mode_t m = archive_entry_mode(e) & 07777;
		if (!l->root && (m & 0700) != 0700) {
			struct dirmode *nd =
			    realloc(l->dirs, (l->ndirs + 1) * sizeof(*nd));
			if (nd) {
				l->dirs = nd;
				if ((nd[l->ndirs].path = strdup(clean)) != NULL)
					nd[l->ndirs++].mode = m;
			}
			fchmod(dfd, m | 0700);
		}
		close(dfd);
		break;
	}
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);
		if (target == NULL || symlinkat(target, pfd, name) != 0) {
			rc = img_err(l->err, l->errlen, KB_ESYS,
			    "%s: %s: symlink: %s", l->what, clean,
			    target ? strerror(errno) : "no target");
			break;
		}
		if (l->root)
			fchownat(pfd, name, (uid_t)archive_entry_uid(e),
			    (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW);
		struct timespec ts[2] = {
			{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
			{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
		};
		utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW);
		break;
	}
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO: {
		mode_t m = (mode_t)type | (archive_entry_mode(e) & 07777);
		dev_t dev = makedev(archive_entry_rdevmajor(e),
		    archive_entry_rdevminor(e));
		if (mknodat(pfd, name, m, type == AE_IFIFO ? 0 : dev) != 0) {
			/* Without root, device nodes cannot be made; the
			 * runtime provides /dev anyway. */
			if (errno == EPERM && !l->root)
				break;
			rc = img_err(l->err, l->errlen, KB_ESYS,
			    "%s: %s: mknod: %s", l->what, clean,
			    strerror(errno));
			break;
		}
		if (l->root)
			fchownat(pfd, name, (uid_t)archive_entry_uid(e),
			    (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW);
		fchmodat(pfd, name, archive_entry_mode(e) & 07777, 0);
		break;
	}
	default:
		/* Sockets and unknown types: nothing to make. */
		break;
	}
out:
	close(pfd);
	return rc;
}

static int unpack_layer(struct layer *l, json_t *desc, int idx)
{
	const char *dg = json_string_value(json_object_get(desc, "digest"));
	const char *mt = json_string_value(json_object_get(desc, "mediaType"));
	char what[160], path[4200], got[80];
	snprintf(what, sizeof(what), "layer %d (%s)", idx, dg ? dg : "?");
	l->what = what;
	if (!img_digest_valid(dg))
		return img_err(l->err, l->errlen, KB_EINVAL, "%s: bad digest",
		    what);
	if (mt && !strstr(mt, "tar"))
		return img_err(l->err, l->errlen, KB_EINVAL,
		    "%s: media type %s is not a tar layer", what, mt);
	img_blob_path(l->st, dg, path, sizeof(path));
	struct reader *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return img_err(l->err, l->errlen, KB_ENOMEM, "out of memory");
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		int e = errno;
		free(r);
		return img_err(l->err, l->errlen,
		    e == ENOENT ? KB_EINVAL : KB_ESYS, "%s: %s", what,
		    e == ENOENT ? "missing from the store" : strerror(e));
	}
	if (img_hash_init(&r->h) != 0) {
		close(r->fd);
		free(r);
		return img_err(l->err, l->errlen, KB_ENOMEM, "out of memory");
	}
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	int rc = 0;
	if (archive_read_open(a, r, NULL, read_cb, NULL) != ARCHIVE_OK) {
		rc = img_err(l->err, l->errlen, KB_EINVAL, "%s: %s", what,
		    archive_error_string(a) ?: "not a tar");
		goto out;
	}
	struct archive_entry *e;
	int ar;
	while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK ||
	    ar == ARCHIVE_WARN) {
		if ((rc = entry(l, a, e)) != 0)
			goto out;
	}
	if (ar != ARCHIVE_EOF) {
		rc = img_err(l->err, l->errlen, KB_EINVAL, "%s: %s", what,
		    archive_error_string(a) ?: "bad tar");
		goto out;
	}
out:
	/* Hash what the tar reader left (padding) too. A blob that does not
	 * match its digest is the better reason for any failure above. */
	if (rc == 0 || rc == KB_EINVAL) {
		const void *dummy;
		while (read_cb(a, r, &dummy) > 0)
			;
		img_hash_final(&r->h, got);
		if (strcmp(got, dg) != 0)
			rc = img_err(l->err, l->errlen, KB_EINVAL,
			    "%s: digest mismatch (content is %s)", what, got);
	}
	archive_read_free(a);
	img_hash_free(&r->h);
	close(r->fd);
	free(r);
	return rc;
}

int img_unpack(kb_image_store *st, json_t *manifest, const char *dir, char *err,
    size_t errlen)
{
	json_t *layers = json_object_get(manifest, "layers");
	if (!json_is_array(layers))
		return img_err(err, errlen, KB_EINVAL,
		    "manifest has no layers");
	struct layer l = {
		.st = st,
		.root = geteuid() == 0,
		.err = err,
		.errlen = errlen,
	};
	l.rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l.rootfd < 0)
		return img_err(err, errlen, KB_ESYS, "%s: %s", dir,
		    strerror(errno));
	json_t *d;
	size_t i;
	int rc = 0;
	json_array_foreach(layers, i, d) {
		rc = unpack_layer(&l, d, (int)i + 1);
		kb_strmap_clear(&l.seen, NULL);
		if (rc)
			break;
	}
	/* Deepest (latest) first, so the walk still gets through. */
	for (size_t k = l.ndirs; k-- > 0;) {
		char *comp[MAXCOMP];
		int n = split(l.dirs[k].path, comp);
		int fd = rc == 0 && n > 0 ? walk(&l, comp, n, false) : -1;
		if (fd >= 0) {
			fchmod(fd, l.dirs[k].mode);
			close(fd);
		}
		free(l.dirs[k].path);
	}
	free(l.dirs);
	close(l.rootfd);
	return rc;
}
