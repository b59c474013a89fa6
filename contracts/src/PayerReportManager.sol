// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IPayerRegistry} from "./interfaces/IPayerRegistry.sol";
import {IPayerReportManager} from "./interfaces/IPayerReportManager.sol";

/// Payer reports per originator, each continuing the previous one, accepted only with a quorum
/// of canonical node signatures, then settled (by anyone who knows the payer list the report
/// hashed) against the PayerRegistry.
contract PayerReportManager is IPayerReportManager {
    /// secp256k1n / 2: signatures with a larger s are the malleable twin of a valid one.
    uint256 private constant MAX_S = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    INodeRegistry public immutable nodeRegistry;
    IPayerRegistry public immutable payerRegistry;

    mapping(uint32 => PayerReport[]) private _reports;

    error ZeroAddress();
    error InvalidSequenceIds(uint64 startSequenceId, uint64 endSequenceId);
    error ContinuityBroken(uint32 originatorNodeId, uint64 expectedStart, uint64 startSequenceId);
    error NoNodeIds();
    error DuplicateNodeId(uint32 nodeId);
    error NodeNotFound(uint32 nodeId);
    error NotCanonical(uint32 nodeId);
    error DuplicateSignature(uint32 nodeId);
    error DuplicateSigner(uint32 nodeId, address signer);
    error InvalidSignature(uint32 nodeId);
    error WrongSigner(uint32 nodeId, address expected, address recovered);
    error InsufficientSignatures(uint256 valid, uint256 required);
    error PayerReportNotFound(uint32 originatorNodeId, uint256 payerReportIndex);
    error AlreadySettled(uint32 originatorNodeId, uint256 payerReportIndex);
    error ArrayLengthMismatch(uint256 payers, uint256 fees);
    error PayersHashMismatch(bytes32 expected, bytes32 given);
    error PayersNotSorted(uint256 index, address payer);

    constructor(address nodeRegistry_, address payerRegistry_) {
        if (nodeRegistry_ == address(0) || payerRegistry_ == address(0)) revert ZeroAddress();
        nodeRegistry = INodeRegistry(nodeRegistry_);
        payerRegistry = IPayerRegistry(payerRegistry_);
    }

    /// Bound to this chain and this contract, so an attestation made for one testnet's reports
    /// cannot be replayed on another's.
    function getPayerReportDigest(
        uint32 originatorNodeId,
        uint64 startSequenceId,
        uint64 endSequenceId,
        uint32 endMinuteSinceEpoch,
        bytes32 payersHash,
        uint32[] calldata nodeIds
    ) public view returns (bytes32) {
        bytes32 inner = keccak256(
            abi.encode(
                block.chainid,
                address(this),
                originatorNodeId,
                startSequenceId,
                endSequenceId,
                endMinuteSinceEpoch,
                payersHash,
                nodeIds
            )
        );
        return keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", inner));
    }

    /// Beyond the interface's rules it refuses what could never settle or be claimed sensibly:
    /// endSequenceId < startSequenceId, an empty or repeated nodeIds list, unknown node ids.
    function submit(
        uint32 originatorNodeId,
        uint64 startSequenceId,
        uint64 endSequenceId,
        uint32 endMinuteSinceEpoch,
        bytes32 payersHash,
        uint32[] calldata nodeIds,
        NodeSignature[] calldata signatures
    ) external returns (uint256 payerReportIndex) {
        payerReportIndex = _checkContinuity(originatorNodeId, startSequenceId, endSequenceId);
        _checkNodeIds(nodeIds);
        uint32[] memory signingNodeIds = _checkSignatures(
            getPayerReportDigest(
                originatorNodeId, startSequenceId, endSequenceId, endMinuteSinceEpoch, payersHash, nodeIds
            ),
            signatures
        );
        PayerReport storage report = _reports[originatorNodeId].push();
        report.originatorNodeId = originatorNodeId;
        report.startSequenceId = startSequenceId;
        report.endSequenceId = endSequenceId;
        report.endMinuteSinceEpoch = endMinuteSinceEpoch;
        report.payersHash = payersHash;
        report.nodeIds = nodeIds;
        emit PayerReportSubmitted(
            originatorNodeId, payerReportIndex, startSequenceId, endSequenceId, payersHash, signingNodeIds
        );
    }

    function settle(
        uint32 originatorNodeId,
        uint256 payerReportIndex,
        address[] calldata payers,
        uint256[] calldata fees
    ) external {
        PayerReport storage report = _report(originatorNodeId, payerReportIndex);
        if (report.isSettled) revert AlreadySettled(originatorNodeId, payerReportIndex);
        if (payers.length != fees.length) revert ArrayLengthMismatch(payers.length, fees.length);
        bytes32 given = keccak256(abi.encode(payers, fees));
        if (given != report.payersHash) revert PayersHashMismatch(report.payersHash, given);

        uint256 total;
        for (uint256 i; i < fees.length; ++i) {
            // One canonical list per report: strictly ascending, so no payer appears twice.
            if (i > 0 && payers[i] <= payers[i - 1]) revert PayersNotSorted(i, payers[i]);
            total += fees[i];
        }
        report.isSettled = true;
        report.feesSettled = total;
        payerRegistry.settleUsage(payers, fees);
        emit PayerReportSettled(originatorNodeId, payerReportIndex, total);
    }

    function getPayerReport(uint32 originatorNodeId, uint256 payerReportIndex)
        external
        view
        returns (PayerReport memory)
    {
        return _report(originatorNodeId, payerReportIndex);
    }

    function getPayerReportCount(uint32 originatorNodeId) external view returns (uint256) {
        return _reports[originatorNodeId].length;
    }

    function _report(uint32 originatorNodeId, uint256 payerReportIndex)
        private
        view
        returns (PayerReport storage)
    {
        PayerReport[] storage reports = _reports[originatorNodeId];
        if (payerReportIndex >= reports.length) {
            revert PayerReportNotFound(originatorNodeId, payerReportIndex);
        }
        return reports[payerReportIndex];
    }

    /// The new report's index; its start must be the previous report's end (0 for the first).
    function _checkContinuity(uint32 originatorNodeId, uint64 startSequenceId, uint64 endSequenceId)
        private
        view
        returns (uint256 index)
    {
        if (endSequenceId < startSequenceId) revert InvalidSequenceIds(startSequenceId, endSequenceId);
        PayerReport[] storage reports = _reports[originatorNodeId];
        index = reports.length;
        uint64 expectedStart = index == 0 ? 0 : reports[index - 1].endSequenceId;
        if (startSequenceId != expectedStart) {
            revert ContinuityBroken(originatorNodeId, expectedStart, startSequenceId);
        }
    }

    function _checkNodeIds(uint32[] calldata nodeIds) private view {
        if (nodeIds.length == 0) revert NoNodeIds();
        for (uint256 i; i < nodeIds.length; ++i) {
            for (uint256 j; j < i; ++j) {
                if (nodeIds[i] == nodeIds[j]) revert DuplicateNodeId(nodeIds[i]);
            }
            // getNode reverts for an unknown id; turn that into this contract's own error.
            try nodeRegistry.getNode(nodeIds[i]) returns (INodeRegistry.Node memory) {}
            catch {
                revert NodeNotFound(nodeIds[i]);
            }
        }
    }

    /// Every signature must come from a distinct canonical node's registered signer; returns
    /// the signing node ids in the order given.
    function _checkSignatures(bytes32 digest, NodeSignature[] calldata signatures)
        private
        view
        returns (uint32[] memory signingNodeIds)
    {
        signingNodeIds = new uint32[](signatures.length);
        address[] memory signers = new address[](signatures.length);
        for (uint256 i; i < signatures.length; ++i) {
            uint32 nodeId = signatures[i].nodeId;
            for (uint256 j; j < i; ++j) {
                if (signingNodeIds[j] == nodeId) revert DuplicateSignature(nodeId);
            }
            if (!nodeRegistry.isCanonicalNode(nodeId)) revert NotCanonical(nodeId);
            address expected = nodeRegistry.getNode(nodeId).signer;
            address recovered = _recover(digest, signatures[i].signature, nodeId);
            if (recovered != expected) revert WrongSigner(nodeId, expected, recovered);
            for (uint256 j; j < i; ++j) {
                if (signers[j] == recovered) revert DuplicateSigner(nodeId, recovered);
            }
            signingNodeIds[i] = nodeId;
            signers[i] = recovered;
        }
        uint256 required = uint256(nodeRegistry.canonicalNodesCount()) / 2 + 1;
        if (signatures.length < required) revert InsufficientSignatures(signatures.length, required);
    }

    /// ecrecover over a 65-byte r || s || v signature; v may be 27/28 or 0/1.
    function _recover(bytes32 digest, bytes calldata signature, uint32 nodeId)
        private
        pure
        returns (address recovered)
    {
        if (signature.length != 65) revert InvalidSignature(nodeId);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        if ((v != 27 && v != 28) || uint256(s) > MAX_S) revert InvalidSignature(nodeId);
        recovered = ecrecover(digest, v, r, s);
        if (recovered == address(0)) revert InvalidSignature(nodeId);
    }
}
