/*
 * A stand-in for Windows' bcryptprimitives.dll, for running the test suite
 * under wine older than 8.13 (Debian 12 ships 8.0), which lacks the DLL.
 *
 * Rust 1.78 and later link every Windows program against
 * bcryptprimitives.dll for ProcessPrng, the system's random number source
 * (std uses it to seed HashMap). Without the DLL, the loader refuses to
 * start the program at all. This DLL exports only ProcessPrng and fills the
 * buffer from RtlGenRandom (exported by advapi32 as SystemFunction036),
 * which wine has had for a long time.
 *
 * Not for real Windows or wine >= 8.13, which have the real thing;
 * ci/windows.sh installs it into the wine prefix only where it is missing.
 */
#include <windows.h>

/* RtlGenRandom takes a ULONG length: feed it at most 1 GiB at a time. */
#define CHUNK ((SIZE_T)1 << 30)

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG n = (ULONG)(length < CHUNK ? length : CHUNK);
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        length -= n;
    }
    /* The real ProcessPrng always returns TRUE; callers treat FALSE as a
     * fatal error, which is the honest answer if RtlGenRandom failed. */
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
