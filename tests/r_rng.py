"""R's Marsaglia-Multicarry generator, exp_rand and sample() with sample.kind = "Rounding" (R < 3.6 / RNGversion)."""
import math

M32 = 0xFFFFFFFF
I2_32M1 = 2.328306437080797e-10


class MarsagliaMulticarry:
    def __init__(self, seed: int):
        s = seed & M32
        for _ in range(50):
            s = (69069 * s + 1) & M32
        seeds = []
        for _ in range(2):
            s = (69069 * s + 1) & M32
            seeds.append(s)
        self.i1, self.i2 = seeds
        if self.i1 == 0:
            self.i1 = 1
        if self.i2 == 0:
            self.i2 = 1

    def unif(self) -> float:
        self.i1 = (36969 * (self.i1 & 0xFFFF) + (self.i1 >> 16)) & M32
        self.i2 = (18000 * (self.i2 & 0xFFFF) + (self.i2 >> 16)) & M32
        x = (((self.i1 << 16) & M32) ^ (self.i2 & 0xFFFF)) * I2_32M1
        if x <= 0.0:
            return 0.5 * I2_32M1
        if 1.0 - x <= 0.0:
            return 1.0 - 0.5 * I2_32M1
        return x

    def exp(self) -> float:
        q, term, total = [], 1.0, 0.0
        for k in range(1, 17):
            term *= math.log(2.0) / k
            total += term
            q.append(total)
        q[-1] = 1.0
        a = 0.0
        u = self.unif()
        while u <= 0.0 or u >= 1.0:
            u = self.unif()
        while True:
            u += u
            if u > 1.0:
                break
            a += q[0]
        u -= 1.0
        if u <= q[0]:
            return a + u
        i = 0
        ustar = self.unif()
        umin = ustar
        while True:
            ustar = self.unif()
            if umin > ustar:
                umin = ustar
            i += 1
            if not u > q[i]:
                break
        return a + umin * q[0]

    def sample_index(self, n: int, k: int) -> list[int]:
        return [int(math.floor(n * self.unif())) + 1 for _ in range(k)]
