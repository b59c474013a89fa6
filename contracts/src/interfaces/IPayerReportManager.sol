// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// Payer reports: a range of one originator's envelopes, attested by a quorum of canonical
/// nodes, submitted, then settled against the PayerRegistry.
interface IPayerReportManager {
    struct PayerReport {
        uint32 originatorNodeId;
        uint64 startSequenceId;     // exclusive: the previous report's endSequenceId
        uint64 endSequenceId;       // inclusive
        uint32 endMinuteSinceEpoch;
        bytes32 payersHash;         // keccak256(abi.encode(address[] payers, uint256[] fees)), payers ascending
        uint32[] nodeIds;           // nodes that share this report's fees
        bool isSettled;
        uint256 feesSettled;
    }

    struct NodeSignature {
        uint32 nodeId;
        bytes signature;            // 65-byte secp256k1 signature over getPayerReportDigest(...)
    }

    event PayerReportSubmitted(uint32 indexed originatorNodeId, uint256 indexed payerReportIndex, uint64 startSequenceId, uint64 endSequenceId, bytes32 payersHash, uint32[] signingNodeIds);
    event PayerReportSettled(uint32 indexed originatorNodeId, uint256 indexed payerReportIndex, uint256 feesSettled);

    /// EIP-191 personal-sign hash ("\x19Ethereum Signed Message:\n32" +
    /// keccak256(abi.encode(block.chainid, address(this), ...all fields))): bound to one chain and
    /// one deployment, so attestations cannot be replayed across testnets.
    function getPayerReportDigest(uint32 originatorNodeId, uint64 startSequenceId, uint64 endSequenceId, uint32 endMinuteSinceEpoch, bytes32 payersHash, uint32[] calldata nodeIds) external view returns (bytes32);
    /// Requires startSequenceId to equal the previous report's endSequenceId (0 for the first),
    /// signatures from distinct canonical nodes by their registered signers, and at least
    /// canonicalNodesCount()/2+1 of them.
    function submit(uint32 originatorNodeId, uint64 startSequenceId, uint64 endSequenceId, uint32 endMinuteSinceEpoch, bytes32 payersHash, uint32[] calldata nodeIds, NodeSignature[] calldata signatures) external returns (uint256 payerReportIndex);
    /// Requires keccak256(abi.encode(payers, fees)) == payersHash and payers strictly ascending
    /// (one canonical list per report); charges the PayerRegistry.
    function settle(uint32 originatorNodeId, uint256 payerReportIndex, address[] calldata payers, uint256[] calldata fees) external;
    function getPayerReport(uint32 originatorNodeId, uint256 payerReportIndex) external view returns (PayerReport memory);
    function getPayerReportCount(uint32 originatorNodeId) external view returns (uint256);
}
