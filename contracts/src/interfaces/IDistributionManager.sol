// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// Fees owed to nodes from settled payer reports. A settled report's feesSettled is split
/// equally among its nodeIds; the remainder of the division is kept as protocol fees.
interface IDistributionManager {
    event Claimed(uint32 indexed nodeId, uint32 indexed originatorNodeId, uint256 indexed payerReportIndex, uint256 amount);
    event Withdrawn(uint32 indexed nodeId, address recipient, uint256 amount);

    /// Node owner only: credits the node's share of each named settled report, once per report.
    function claim(uint32 nodeId, uint32[] calldata originatorNodeIds, uint256[] calldata payerReportIndices) external returns (uint256 claimed);
    /// Node owner only: transfers the owed fees to the owner; reverts if the manager holds too
    /// few tokens (send the PayerRegistry's excess first).
    function withdraw(uint32 nodeId) external returns (uint256 amount);
    function getOwedFees(uint32 nodeId) external view returns (uint256);
    function totalOwedFees() external view returns (uint256);
    function protocolFees() external view returns (uint256);
}
