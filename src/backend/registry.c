#include "backend/backend.h"
#include "backend/cpu/cpu_kernels.h"
#include "backend/cuda/cuda.h"

#include <string.h>

static const uq_backend_ops *const registry[] = {
    &uq_backend_cpu,
    &uq_backend_cpu_ref,
    &uq_backend_cuda,
};

size_t uq_backend_count(void) { return sizeof registry / sizeof *registry; }

const uq_backend_ops *uq_backend_at(size_t i) { return i < uq_backend_count() ? registry[i] : NULL; }

const uq_backend_ops *uq_backend_find(const char *name)
{
    for (size_t i = 0; i < uq_backend_count(); i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}
