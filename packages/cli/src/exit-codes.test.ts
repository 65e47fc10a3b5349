import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { EXIT_FAILURE, exitCodeOf, RPC_EXIT_CODES } from './exit-codes'

describe('exit codes', () => {
  it('give every code its own exit code, 64 + the gRPC number, PROTOCOL_ERROR last', () => {
    const codes = Object.values(Code)
    expect(Object.keys(RPC_EXIT_CODES).sort()).toEqual([...codes].sort())
    expect(new Set(Object.values(RPC_EXIT_CODES)).size).toBe(codes.length)
    expect(RPC_EXIT_CODES.CANCELLED).toBe(65)
    expect(RPC_EXIT_CODES.NOT_FOUND).toBe(69)
    expect(RPC_EXIT_CODES.UNAVAILABLE).toBe(78)
    expect(RPC_EXIT_CODES.UNAUTHENTICATED).toBe(80)
    expect(RPC_EXIT_CODES.PROTOCOL_ERROR).toBe(81)
  })

  it('maps an RpcError by its code and anything else to 1', () => {
    expect(exitCodeOf(new RpcError(Code.DEADLINE_EXCEEDED, 'late'))).toBe(68)
    expect(exitCodeOf(new Error('boom'))).toBe(EXIT_FAILURE)
  })
})
