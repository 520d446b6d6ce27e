/* plugins/proxy-nftables/pin.c — keep libnftables loaded for good.
 *
 * libnftables points GMP's allocators at its own functions
 * (mp_set_memory_functions) when it makes a context. libgmp is shared with
 * the rest of the process (GnuTLS's nettle uses it for every TLS
 * handshake), so once this backend is unloaded — the proxy loads it only to
 * clean up when another backend runs — GMP would call into unmapped code
 * and the next HTTPS connection to the API server crashes the host. Marking
 * libnftables RTLD_NODELETE when this module loads keeps those functions
 * mapped for the life of the process.
 */
#include <dlfcn.h>

#include <nftables/libnftables.h>

__attribute__((constructor)) static void pin_libnftables(void)
{
	Dl_info info;
	if (dladdr((void *)nft_ctx_new, &info) && info.dli_fname != NULL)
		(void)dlopen(info.dli_fname,
		    RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}
