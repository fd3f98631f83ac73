#include <stdarg.h>
#include <stdio.h>
#include "nf.h"

nf_status nf_seterr(nf_err *err, nf_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *nf_status_name(nf_status s)
{
    switch (s) {
    case NF_OK: return "ok";
    case NF_EINVAL: return "invalid argument";
    case NF_ENOMEM: return "out of memory";
    case NF_EIO: return "i/o error";
    case NF_EFORMAT: return "malformed input";
    case NF_ERANGE: return "out of range";
    case NF_ESTATE: return "bad state";
    }
    return "unknown status";
}
